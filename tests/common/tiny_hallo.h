#pragma once
// The tiny random Hallo the trainer, data-parallel and inference tests share: 64 px
// frames, the goldens' narrow UNet/VAE widths, a small audio projection, seeded init.
#include <ATen/ATen.h>

#include "trainer/batch_source.h"
#include "trainer/step.h"
#include "trainer/step_rng.h"
#include "trainer/train_config.h"

namespace hallo::test {

inline trainer::TrainConfig tiny_hallo_config(int stage) {
  trainer::TrainConfig c = stage == 1 ? trainer::TrainConfig::stage1() : trainer::TrainConfig::stage2();
  c.data.train_width = c.data.train_height = 64;
  c.data.n_sample_frames = 3;
  c.data.n_motion_frames = 2;
  c.model.unet = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}, {"cross_attention_dim", 40}};
  c.model.vae = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}};
  c.model.audioproj = {{"intermediate_dim", 32}, {"context_tokens", 4}};
  c.unet_additional_kwargs["audio_attention_dim"] = 24;
  c.model.init_seed = 5;
  return c;
}

// Data of that size: `audio_layers` x 16 audio features per frame.
inline trainer::DataShape tiny_hallo_shape(int64_t audio_layers = 2) {
  trainer::DataShape s;
  s.audio_layers = audio_layers;
  s.audio_dim = 16;
  s.height = s.width = 64;
  return s;
}

// A random batch at that size, seeded: `frames` target frames and as many reference
// frames (stage 1: one of each, no masks or audio), pixels in [-1, 1].
inline trainer::TrainBatch tiny_train_batch(int stage, int64_t batch = 2, uint64_t seed = 99, int64_t frames = 3) {
  at::manual_seed(seed);
  const int64_t F = stage == 1 ? 1 : frames, S = F, H = 64;
  trainer::TrainBatch b;
  b.target_pixels = at::rand({batch, F, 3, H, H}) * 2 - 1;
  b.ref_pixels = at::rand({batch, S, 3, H, H}) * 2 - 1;
  b.face_region = (at::rand({batch, 1, H, H}) > 0.5).to(at::kFloat).expand({-1, 3, -1, -1}).contiguous();
  b.face_emb = at::randn({batch, 512});
  if (stage == 2) {
    for (int l = 0; l < trainer::kMaskLevels; ++l) {
      const int64_t s = H / 8 >> l;
      b.full_mask[l] = at::rand({batch, F, 1, s, s});
      b.face_mask[l] = at::rand({batch, F, 1, s, s});
      b.lip_mask[l] = at::rand({batch, F, 1, s, s});
    }
    b.audio = at::randn({batch, F, 5, 2, 16});
  }
  return b;
}

// `b` with the step's random draws (noise, timesteps, posterior eps) from StepRng(seed),
// every condition on.
inline trainer::MicroBatch tiny_micro_batch(const trainer::TrainBatch& b, int stage, uint64_t seed = 1) {
  trainer::StepRng rng(seed, 0);
  trainer::DrawShape ds;
  ds.stage = stage;
  ds.batch = b.batch();
  ds.frames = b.frames();
  ds.ref_frames = b.ref_frames();
  ds.height = ds.width = 8;
  return {b, rng.draw(ds), {}};
}

}  // namespace hallo::test
