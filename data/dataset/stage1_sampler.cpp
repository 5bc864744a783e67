#include "core/error.h"
#include "data/dataset/batch_fill.h"
#include "data/dataset/image_tensors.h"
#include "data/dataset/sample_rng.h"
#include "data/dataset/samplers.h"

namespace hallo::data {

namespace {

// A (reference, target) pair with |ref - target| >= n, uniform over references
// that have a partner, then uniform over that reference's partners.
std::pair<int, int> draw_pair(SampleRng& rng, int num_frames, int n) {
  const int F = num_frames;
  if (n == 0) return {rng.between(0, F - 1), rng.between(0, F - 1)};
  int ref;
  if (F >= 2 * n) {
    ref = rng.between(0, F - 1);  // every frame has a partner
  } else {
    // Only [0, F-1-n] (partners after) and [n, F-1] (partners before) qualify.
    const int k = rng.between(0, 2 * (F - n) - 1);
    ref = k < F - n ? k : n + (k - (F - n));
  }
  const int before = std::max(0, ref - n + 1);  // targets 0 .. ref-n
  const int after = std::max(0, F - ref - n);   // targets ref+n .. F-1
  const int k = rng.between(0, before + after - 1);
  return {ref, k < before ? k : ref + n + (k - before)};
}

}  // namespace

Stage1Sampler::Stage1Sampler(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg)
    : SamplerBase(std::move(reader), cfg, cfg.min_ref_distance + 1, /*need_audio=*/false, "stage 1") {}

Stage1Batch Stage1Sampler::next(int batch_size) {
  auto draws = draw(batch_size);
  const int64_t B = batch_size;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  Stage1Batch out;
  out.ref_image = at::empty({B, 3, height_, width_}, f32);
  out.target_image = at::empty({B, 3, height_, width_}, f32);
  ConditionTensors cond = alloc_conditions(B, height_, width_, emb_dim_);
  const int C = latent_channels_;
  out.ref_latent_mean = alloc_latents({B}, C, height_, width_);
  out.ref_latent_std = alloc_latents({B}, C, height_, width_);
  out.target_latent_mean = alloc_latents({B}, C, height_, width_);
  out.target_latent_std = alloc_latents({B}, C, height_, width_);
  out.info.resize(static_cast<size_t>(B));
  const std::string where = reader_->dir().string();

  load_batch(draws, [&](int64_t b, const Draw& d) {
    const ClipRecord clip = reader_->read_clip(d.clip, /*frames=*/false);
    SampleRng rng(d.seed);
    const auto [ref, tgt] = draw_pair(rng, clip.num_frames, cfg_.min_ref_distance);
    const auto frames = reader_->read_frames(d.clip, {ref, tgt});
    put_image(out.ref_image[b], frames[0]);
    put_image(out.target_image[b], frames[1]);
    fill_conditions(cond, b, clip, where);
    if (C > 0) {
      put_latents(out.ref_latent_mean.narrow(0, b, 1), out.ref_latent_std.narrow(0, b, 1), clip,
                  {ref}, where);
      put_latents(out.target_latent_mean.narrow(0, b, 1), out.target_latent_std.narrow(0, b, 1),
                  clip, {tgt}, where);
    }
    SampleInfo& info = out.info[static_cast<size_t>(b)];
    info = SampleInfo{};  // a retried element starts clean
    info.clip = d.clip;
    info.ref_frame = ref;
    info.frames = {tgt};
  });

  static_cast<ClipConditions&>(out) = std::move(cond);
  return out;
}

}  // namespace hallo::data
