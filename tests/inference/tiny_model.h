#pragma once
// Tiny random Hallo nets for the inference tests (the trainer's seeded init).
#include "tests/common/tiny_hallo.h"
#include "trainer/model_setup.h"
#include "trainer/train_config.h"

namespace hallo::inference::testing {

inline trainer::TrainConfig tiny_config() {
  trainer::TrainConfig c = test::tiny_hallo_config(2);
  c.data.n_sample_frames = 4;
  return c;
}

// log-mel: one "layer" of n_mels channels
inline trainer::DataShape tiny_shape() { return test::tiny_hallo_shape(1); }

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
