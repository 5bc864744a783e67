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

}  // namespace hallo::data
