#pragma once
// The random stream of training: one CPU generator per rank, seeded from
// (seed, rank), drawn in upstream's order for every micro-step: target posterior
// noise, noise, offset noise, timesteps, condition-dropout draws, reference
// posterior noise. Drawing on the CPU keeps a seed meaning the same numbers on
// any device; the generator state is part of every checkpoint.
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "trainer/batch.h"

namespace hallo::trainer {

struct DrawShape {
  int64_t batch = 1, frames = 1, ref_frames = 1;
  int64_t channels = 4, height = 64, width = 64;  // latent shape
  int stage = 2;
  int num_train_timesteps = 1000;
};

class StepRng {
 public:
  StepRng(uint64_t seed, int rank);
  StepDraws draw(const DrawShape& s);
  // The stream itself, for loops with their own draws (the VAE stage's posterior noise).
  at::Generator& generator() { return gen_; }
  at::Tensor state() const;  // uint8 tensor, as torch.Generator.get_state()
  void set_state(const at::Tensor& state);

 private:
  mutable at::Generator gen_;
};

}  // namespace hallo::trainer
