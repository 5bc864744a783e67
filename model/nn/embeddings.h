#pragma once
// Sinusoidal timestep features (diffusers get_timestep_embedding) and the
// TimestepEmbedding MLP (linear_1 -> SiLU -> linear_2).
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

namespace hallo::nn {

// timesteps: [B] (any numeric dtype) -> [B, dim] float32
at::Tensor timestep_sinusoid(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                             double max_period = 10000.0);

class TimestepEmbeddingImpl : public torch::nn::Module {
 public:
  TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear linear_1{nullptr}, linear_2{nullptr};
};
TORCH_MODULE(TimestepEmbedding);

}  // namespace hallo::nn
