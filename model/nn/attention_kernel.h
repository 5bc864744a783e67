#pragma once
// The one place that chooses how softmax(Q K^T * scale) V is computed.
//  - libtorch >= 2.0: at::scaled_dot_product_attention (fused, memory-efficient).
//  - libtorch 1.13: the math path, chunked over queries so the score matrix for
//    one chunk stays under a byte budget; full-size models at 64x64 latents
//    would otherwise materialise [B*heads, 4096, 4096] scores (1 GiB each).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hallo::nn {

enum class AttentionBackend { Auto, Math, Chunked, Sdpa };

struct AttentionSettings {
  AttentionBackend backend = AttentionBackend::Auto;
  // Per chunk of the math path. Small chunks stay in cache: 8 MiB measured fastest on the
  // full-size UNet3D (51 s vs 56 s at 64 MiB) and equal on the UNet2D (bench/RESULTS.md).
  int64_t score_budget_bytes = int64_t{8} << 20;
  // The same with gradients (model/nn/attention_recompute.h): backward holds about three
  // chunks of this size; larger chunks make BLAS efficient for the short head dims
  // (measured on the stage-2 anchor: 32-row chunks ran at ~28 GFLOP/s).
  int64_t grad_score_budget_bytes = int64_t{64} << 20;
  // Scores as diffusers computes them, baddbmm(zeros, q, k^T, beta=0, alpha=scale),
  // also without gradients (the goldens). Off: bmm then an in-place scale, which skips
  // zero-filling the score matrix; it differs from baddbmm by float rounding only.
  // With gradients the baddbmm form is always used (see attention_kernel.cpp).
  bool upstream_op_order = false;
};

// Process-wide settings (set from CLI/config before running models).
AttentionSettings& attention_settings();

// q: [N, Lq, D], k/v: [N, Lk, D] (N = batch*heads) -> [N, Lq, D]. scale = D^-0.5.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

bool sdpa_available();

}  // namespace hallo::nn
