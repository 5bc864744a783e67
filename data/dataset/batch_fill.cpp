#include "data/dataset/batch_fill.h"

#include <cstring>

#include "core/error.h"
#include "data/dataset/image_tensors.h"

namespace hallo::data {

ConditionTensors alloc_conditions(int64_t batch, int height, int width, int emb_dim) {
  ConditionTensors t;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  t.face_region = at::empty({batch, 1, height, width}, f32);
  t.face_emb = at::zeros({batch, emb_dim}, f32);
  t.face_emb_valid = at::zeros({batch}, at::TensorOptions().dtype(at::kBool));
  for (int l = 0; l < kMaskLevels; ++l) {
    const cv::Size s = mask_level_size(height, width, l);
    for (auto* level : {&t.lip, &t.face, &t.pose}) (*level)[l] = at::empty({batch, 1, s.height, s.width}, f32);
  }
  return t;
}

void fill_conditions(ConditionTensors& t, int64_t b, const ClipRecord& c, const std::string& where) {
  if (c.face_region.empty() || c.lip_masks.size() != kMaskLevels ||
      c.face_masks.size() != kMaskLevels || c.pose_masks.size() != kMaskLevels)
    fail_at(where, "clip '{}' has no face region / masks", c.id);
  put_mask(t.face_region[b], c.face_region);
  for (int l = 0; l < kMaskLevels; ++l) {
    put_mask(t.lip[l][b], c.lip_masks[l]);
    put_mask(t.face[l][b], c.face_masks[l]);
    put_mask(t.pose[l][b], c.pose_masks[l]);
  }
  if (!c.face_emb.empty()) {
    if (static_cast<int64_t>(c.face_emb.size()) != t.face_emb.size(1))
      fail_at(where, "clip '{}': face embedding has {} values, expected {}", c.id, c.face_emb.size(),
              t.face_emb.size(1));
    std::memcpy(t.face_emb[b].data_ptr<float>(), c.face_emb.data(), c.face_emb.size() * sizeof(float));
    t.face_emb_valid[b].fill_(c.face_emb_valid);
  }
}

at::Tensor alloc_latents(at::IntArrayRef batch_dims, int channels, int height, int width) {
  if (channels == 0) return {};
  std::vector<int64_t> dims(batch_dims.begin(), batch_dims.end());
  dims.insert(dims.end(), {channels, height / 8, width / 8});
  return at::empty(dims, at::TensorOptions().dtype(at::kFloat));
}

void put_latents(at::Tensor mean_dst, at::Tensor std_dst, const ClipRecord& c,
                 const std::vector<int>& frames, const std::string& where) {
  const int64_t F = c.num_frames, C = mean_dst.size(1), h = mean_dst.size(2), w = mean_dst.size(3);
  const auto per_clip = static_cast<size_t>(F * C * h * w);
  // The sampler decided from the shards' attributes; a clip that now disagrees
  // means the dataset changed under it.
  if (c.latent_channels != C || c.latent_mean.size() != per_clip || c.latent_std.size() != per_clip)
    fail_at(where, "clip '{}': VAE latents have {} channels and {} values, expected {} channels at "
            "{}x{} ({} values); was the dataset rewritten while sampling?",
            c.id, c.latent_channels, c.latent_mean.size(), C, w, h, per_clip);
  std::vector<int64_t> rows(frames.begin(), frames.end());
  for (int64_t f : rows)
    if (f < 0 || f >= F) fail_at(where, "clip '{}': latent frame {} out of range [0,{})", c.id, f, F);
  const auto idx = at::tensor(rows, at::TensorOptions().dtype(at::kLong));
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  auto mean = at::from_blob(const_cast<float*>(c.latent_mean.data()), {F, C, h, w}, f32);  // [F,C,h,w]
  auto sd = at::from_blob(const_cast<float*>(c.latent_std.data()), {F, C, h, w}, f32);
  mean_dst.copy_(mean.index_select(0, idx));  // [K,C,h,w]
  std_dst.copy_(sd.index_select(0, idx));
}

}  // namespace hallo::data
