#pragma once
// Tiny random Hallo nets for the inference tests (the trainer's seeded init).
#include "trainer/model_setup.h"
#include "trainer/train_config.h"

namespace hallo::inference::testing {

inline trainer::TrainConfig tiny_config() {
  trainer::TrainConfig c = trainer::TrainConfig::stage2();
  c.data.train_width = c.data.train_height = 64;
  c.data.n_sample_frames = 4;
  c.data.n_motion_frames = 2;
  c.model.unet = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}, {"cross_attention_dim", 40}};
  c.model.vae = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}};
  c.model.audioproj = {{"intermediate_dim", 32}, {"context_tokens", 4}};
  c.unet_additional_kwargs["audio_attention_dim"] = 24;
  c.model.init_seed = 5;
  return c;
}

inline trainer::DataShape tiny_shape() {
  trainer::DataShape s;
  s.audio_layers = 1;  // log-mel: one "layer" of n_mels channels
  s.audio_dim = 16;
  s.height = s.width = 64;
  return s;
}

// Random weights everywhere (the zero-initialised outputs too), so every branch matters.
inline trainer::ModelBundle tiny_models() {
  trainer::ModelBundle b = trainer::build_models(tiny_config(), tiny_shape(), /*need_vae=*/true);
  at::manual_seed(11);
  at::NoGradGuard ng;
  for (auto& p : b.net->parameters())
    if (p.abs().max().item<double>() == 0) p.normal_(0, 0.02);
  b.net->eval();
  b.vae->eval();
  return b;
}

}  // namespace hallo::inference::testing
