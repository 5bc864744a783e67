#pragma once
// Attention with gradients in bounded memory (the FlashAttention recipe on top of
// BLAS bmm): forward keeps only the output and each query row's log-sum-exp;
// backward recomputes the probabilities chunk by chunk. Plain autograd would keep
// the whole [N, Lq, Lk] probability matrix (512 MiB for one SD1.5 attention at
// 32x32 latents with the reference tokens) plus its gradients while backward runs.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hallo::nn {

// q: [N, Lq, D], k/v: [N, Lk, D] -> [N, Lq, D]; score chunks of at most `budget_bytes`
// (at least 16 query rows).
at::Tensor recompute_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                               int64_t budget_bytes);

}  // namespace hallo::nn
