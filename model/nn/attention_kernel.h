#pragma once
// The one place that chooses how softmax(Q K^T * scale) V is computed.
//  - libtorch >= 2.0: at::scaled_dot_product_attention (fused, memory-efficient).
//  - libtorch 1.13 on CPU: row blocks per thread (model/nn/attention_recompute.h),
//    with their own backward that keeps only the output and log-sum-exp; sequences
//    of <= 64 (motion modules) in one kernel (model/nn/attention_small.h).
//  - otherwise (the goldens' upstream op order, other devices): the math path,
//    chunked over queries so the score matrix for one chunk stays under a byte
//    budget; full-size models at 64x64 latents would otherwise materialise
//    [B*heads, 4096, 4096] scores (1 GiB each).
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hallo::nn {

enum class AttentionBackend { Auto, Math, Chunked, Sdpa };

struct AttentionSettings {
  AttentionBackend backend = AttentionBackend::Auto;
  // Per chunk of the math path (off CPU, or in upstream's op order).
  int64_t score_budget_bytes = int64_t{8} << 20;
  // Score bytes per (sequence, row block) of the CPU row-block kernels.
  int64_t block_bytes = int64_t{2} << 20;
  // Scores as diffusers computes them, baddbmm(zeros, q, k^T, beta=0, alpha=scale),
  // also without gradients (the goldens). Off: bmm then an in-place scale, which skips
  // zero-filling the score matrix; it differs from baddbmm by float rounding only.
  // On: no CPU row-block or small-sequence kernels either.
  bool upstream_op_order = false;
};

// Process-wide settings (set from CLI/config before running models).
AttentionSettings& attention_settings();

// q: [N, Lq, D], k/v: [N, Lk, D] (N = batch*heads) -> [N, Lq, D]. scale = D^-0.5.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

bool sdpa_available();

}  // namespace hallo::nn
