#pragma once
// The tiny random Hallo the trainer, data-parallel and inference tests share: 64 px
// frames, the goldens' narrow UNet/VAE widths, a small audio projection, seeded init.
#include "trainer/batch_source.h"
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

}  // namespace hallo::test
