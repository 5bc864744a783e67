#include "model/nn/embeddings.h"

#include <ATen/ATen.h>

#include <cmath>

namespace hallo::nn {

at::Tensor timestep_sinusoid(const at::Tensor& timesteps, int64_t dim, bool flip_sin_to_cos, double freq_shift,
                             double max_period) {
  const int64_t half = dim / 2;
  auto exponent = at::arange(0, half, at::TensorOptions().dtype(at::kFloat).device(timesteps.device())) *
                  (-std::log(max_period));
  exponent = exponent / (static_cast<double>(half) - freq_shift);
  auto emb = timesteps.to(at::kFloat).unsqueeze(1) * at::exp(exponent).unsqueeze(0);  // [B, half]
  auto sc = at::cat({at::sin(emb), at::cos(emb)}, -1);
  if (flip_sin_to_cos) sc = at::cat({sc.narrow(1, half, half), sc.narrow(1, 0, half)}, -1);
  if (dim % 2 == 1) sc = at::constant_pad_nd(sc, {0, 1});
  return sc;
}

TimestepEmbeddingImpl::TimestepEmbeddingImpl(int64_t in_channels, int64_t time_embed_dim) {
  linear_1 = register_module("linear_1", torch::nn::Linear(in_channels, time_embed_dim));
  linear_2 = register_module("linear_2", torch::nn::Linear(time_embed_dim, time_embed_dim));
}

at::Tensor TimestepEmbeddingImpl::forward(const at::Tensor& x) { return linear_2->forward(at::silu(linear_1->forward(x))); }

}  // namespace hallo::nn
