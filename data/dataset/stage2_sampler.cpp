#include <algorithm>

#include "core/error.h"
#include "data/dataset/batch_fill.h"
#include "data/dataset/image_tensors.h"
#include "data/dataset/sample_rng.h"
#include "data/dataset/samplers.h"

namespace hallo::data {

Stage2Sampler::Stage2Sampler(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg)
    : SamplerBase(std::move(reader), cfg, cfg.n_sample_frames + cfg.n_motion_frames,
                  /*need_audio=*/true, "stage 2") {}

Stage2Batch Stage2Sampler::next(int batch_size) {
  auto draws = draw(batch_size);
  const int64_t B = batch_size;
  const int n = cfg_.n_sample_frames, m = cfg_.n_motion_frames, r = cfg_.audio_radius;
  const auto& first = reader_->index().clips()[draws.front().clip];
  const int64_t L = first.audio_layers, D = first.audio_dim;  // equal for all clips (checked)
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  Stage2Batch out;
  out.ref_image = at::empty({B, 3, height_, width_}, f32);
  out.frames = at::empty({B, n, 3, height_, width_}, f32);
  out.motion_frames = at::empty({B, m, 3, height_, width_}, f32);
  out.audio = at::empty({B, n, 2 * r + 1, L, D}, f32);
  ConditionTensors cond = alloc_conditions(B, height_, width_, emb_dim_);
  const int C = latent_channels_;
  out.latent_mean = alloc_latents({B, n}, C, height_, width_);
  out.latent_std = alloc_latents({B, n}, C, height_, width_);
  out.motion_latent_mean = alloc_latents({B, m}, C, height_, width_);
  out.motion_latent_std = alloc_latents({B, m}, C, height_, width_);
  out.ref_latent_mean = alloc_latents({B}, C, height_, width_);
  out.ref_latent_std = alloc_latents({B}, C, height_, width_);
  out.info.resize(static_cast<size_t>(B));
  const std::string where = reader_->dir().string();

  load_batch(draws, [&](int64_t b, const Draw& d) {
    const ClipRecord clip = reader_->read_clip(d.clip, /*frames=*/false);
    const int F = clip.num_frames;
    SampleRng rng(d.seed);
    // Targets start after room for the motion frames; the reference is any frame.
    const int start = rng.between(m, F - n);
    const int ref = rng.between(0, F - 1);

    SampleInfo& info = out.info[static_cast<size_t>(b)];
    info = SampleInfo{};  // a retried element starts clean
    info.clip = d.clip;
    info.ref_frame = ref;
    std::vector<int> wanted;
    for (int i = start - m; i < start; ++i) info.motion_frames.push_back(i);
    for (int i = start; i < start + n; ++i) info.frames.push_back(i);
    wanted.insert(wanted.end(), info.motion_frames.begin(), info.motion_frames.end());
    wanted.insert(wanted.end(), info.frames.begin(), info.frames.end());
    wanted.push_back(ref);
    const auto frames = reader_->read_frames(d.clip, wanted);
    for (int i = 0; i < m; ++i) put_image(out.motion_frames[b][i], frames[static_cast<size_t>(i)]);
    for (int i = 0; i < n; ++i) put_image(out.frames[b][i], frames[static_cast<size_t>(m + i)]);
    put_image(out.ref_image[b], frames.back());

    if (clip.audio_layers != L || clip.audio_dim != D)
      fail_at(where, "clip '{}': audio shape [{},{}] differs from the index", clip.id,
              clip.audio_layers, clip.audio_dim);
    // Window of frame i: audio of frames i-r .. i+r, clamped to the clip.
    auto audio = at::from_blob(const_cast<float*>(clip.audio.data()), {F, L, D}, f32);  // [F,L,D]
    auto idx = at::empty({n, 2 * r + 1}, at::TensorOptions().dtype(at::kLong));
    auto* p = idx.data_ptr<int64_t>();
    for (int i = 0; i < n; ++i)
      for (int k = -r; k <= r; ++k) *p++ = std::clamp(start + i + k, 0, F - 1);
    out.audio[b].copy_(audio.index_select(0, idx.view({-1})).view({n, 2 * r + 1, L, D}));
    fill_conditions(cond, b, clip, where);
    if (C > 0) {
      put_latents(out.latent_mean[b], out.latent_std[b], clip, info.frames, where);
      put_latents(out.motion_latent_mean[b], out.motion_latent_std[b], clip, info.motion_frames, where);
      put_latents(out.ref_latent_mean.narrow(0, b, 1), out.ref_latent_std.narrow(0, b, 1), clip,
                  {ref}, where);
    }
  });

  static_cast<ClipConditions&>(out) = std::move(cond);
  return out;
}

}  // namespace hallo::data
