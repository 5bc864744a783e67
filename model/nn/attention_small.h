#pragma once
// Attention over many short sequences (the motion modules: one sequence of <= 32
// frames per latent position and head, so N = B*H*W*heads runs into the tens of
// thousands). libtorch 1.13's CPU bmm handles such batches with one BLAS call per
// matrix (plus three index ops each), which made this the dominant cost of a
// training step. This kernel runs each sequence's scores, softmax and weighted
// sum in a few cache lines, in parallel over N, and is its own autograd function:
// backward recomputes the probabilities from the saved log-sum-exp (nothing of
// size N*L*L is kept).
#include <ATen/core/Tensor.h>

namespace hallo::nn {

// Sequences short enough for the kernel.
constexpr int64_t kSmallAttentionMaxLen = 64;

// q: [N, Lq, D], k/v: [N, Lk, D] (float32, CPU) -> [N, Lq, D]; softmax(q k^T * scale) v.
at::Tensor small_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale);

}  // namespace hallo::nn
