#pragma once
// Attention in row blocks on CPU (the FlashAttention recipe on top of BLAS).
//
// libtorch 1.13's CPU bmm runs one multi-threaded BLAS call per matrix; for the short
// head dims of SD (40-160) every call is small, so the threads mostly synchronise
// (the anchor's 16-row chunks ran at ~13 GFLOP/s). Here each thread takes whole
// (sequence, row block) tasks: the block's scores (a few MiB, cache-resident), their
// softmax and the product with V, all single-threaded BLAS inside one parallel
// region (~55 GFLOP/s on the same shapes, bench/RESULTS.md).
//
// With gradients, forward keeps only the output and each query row's log-sum-exp;
// backward recomputes the probabilities block by block. Plain autograd would keep the
// whole [N, Lq, Lk] probability matrix (512 MiB for one SD1.5 attention at 32x32
// latents with the reference tokens) plus its gradients while backward runs.
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace hallo::nn {

// Score bytes per (sequence, row block): 2 MiB measured fastest for Lk = 1024-2048.
constexpr int64_t kAttentionBlockBytes = int64_t{2} << 20;

// q: [N, Lq, D], k/v: [N, Lk, D] (CPU) -> [N, Lq, D] = softmax(q k^T * scale) v. No graph.
at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                             int64_t block_bytes = kAttentionBlockBytes);

// The same as an autograd function (any device; off CPU the blocks are bmm chunks of
// `block_bytes` per sequence).
at::Tensor recompute_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                               int64_t block_bytes = kAttentionBlockBytes);

}  // namespace hallo::nn
