#include "model/nn/attention_kernel.h"

#include <ATen/ATen.h>
#include <torch/version.h>

#include <algorithm>

#include "model/nn/attention_recompute.h"
#include "model/nn/attention_small.h"
#include "model/nn/debug.h"
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace hallo::nn {

AttentionSettings& attention_settings() {
  static AttentionSettings s = [] {
    AttentionSettings d;
    // HALLO_ATTN_BUDGET_MB: score-matrix bytes per chunk of the math path.
    if (const char* e = std::getenv("HALLO_ATTN_BUDGET_MB"); e && std::atoll(e) > 0) d.score_budget_bytes = std::atoll(e) << 20;
    // HALLO_ATTENTION=math|chunked: force a path (diagnostics, benchmarks).
    if (const char* e = std::getenv("HALLO_ATTENTION")) {
      if (std::strcmp(e, "math") == 0) d.backend = AttentionBackend::Math;
      if (std::strcmp(e, "chunked") == 0) d.backend = AttentionBackend::Chunked;
    }
    return d;
  }();
  return s;
}

bool sdpa_available() {
#if TORCH_VERSION_MAJOR >= 2
  return true;
#else
  return false;
#endif
}

namespace {

constexpr int64_t kTinyScoreBytes = int64_t{256} << 10;

// softmax(Q K^T * scale) V. Deliberately not diffusers' baddbmm(empty, beta=0):
// in this test suite that call intermittently returned NaN scores for [16, 4, 4]
// (localised with HALLO_CHECK_FINITE=1) while bmm + scale never did; the results
// agree with the goldens to ~1e-6 either way.
at::Tensor math_block(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, double scale) {
  at::Tensor scores;  // [N, Lq, Lk]
  const bool grad = at::GradMode::is_enabled() && (q.requires_grad() || kt.requires_grad() || v.requires_grad());
  if (grad || attention_settings().upstream_op_order) {
    // Training: diffusers' baddbmm(zeros, q, k^T, beta=0, alpha=scale) (upstream's
    // runs patch its uninitialised `empty` to zeros), whose backward scales after the
    // bmm. Gradients then match upstream's to ~1e-7 instead of ~1e-6, which matters
    // where they pass through the float16 reference bank (stage 1).
    scores = at::zeros({q.size(0), q.size(1), kt.size(2)}, q.options()).baddbmm_(q, kt, 0.0, scale);
  } else {
    scores = at::bmm(q, kt).mul_(scale);
  }
  check_finite(scores, "attention scores (bmm)");
  auto probs = scores.softmax(-1);
  check_finite(probs, "attention softmax");
  auto out = at::bmm(probs, v);
  check_finite(out, "attention probs x V (bmm)");
  return out;
}

}  // namespace

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const auto& s = attention_settings();
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  AttentionBackend b = s.backend;
  // Auto: libtorch 2.x's fused SDPA on GPUs; on the CPU the kernels below (measured
  // faster there, bench/RESULTS.md), and never for the goldens' upstream op order.
  if (b == AttentionBackend::Auto)
    b = sdpa_available() && !q.device().is_cpu() && !s.upstream_op_order ? AttentionBackend::Sdpa
                                                                         : AttentionBackend::Chunked;
#if TORCH_VERSION_MAJOR >= 2
  if (b == AttentionBackend::Sdpa) {
    // [N, L, D] -> [1, N, L, D]: the fused kernels take 4-D input (3-D always falls back
    // to the math path, which builds the whole score matrix). N goes in as heads, sliced:
    // a CUDA grid dimension holds at most 65535 (motion modules at 512^2 with CFG: 65536).
    constexpr int64_t kMaxHeads = 32768;
    auto fused = [](const at::Tensor& q4, const at::Tensor& k4, const at::Tensor& v4) {
      return at::scaled_dot_product_attention(q4.unsqueeze(0), k4.unsqueeze(0), v4.unsqueeze(0)).squeeze(0);
    };
    if (q.size(0) <= kMaxHeads) return fused(q, k, v);
    std::vector<at::Tensor> parts;
    for (int64_t i = 0; i < q.size(0); i += kMaxHeads) {
      const int64_t n = std::min(kMaxHeads, q.size(0) - i);
      parts.push_back(fused(q.narrow(0, i, n), k.narrow(0, i, n), v.narrow(0, i, n)));
    }
    return at::cat(parts, 0);
  }
#else
  if (b == AttentionBackend::Sdpa) b = AttentionBackend::Chunked;
#endif
  const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
  const int64_t es = static_cast<int64_t>(q.element_size());
  const bool grad = at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  // The CPU kernels (not for the goldens' op order, nor when the math path is forced).
  if (b != AttentionBackend::Math && !s.upstream_op_order && q.device().is_cpu()) {
    // Many short sequences (motion modules): one kernel instead of a BLAS call per sequence.
    if (q.scalar_type() == at::kFloat && lq <= kSmallAttentionMaxLen && lk <= kSmallAttentionMaxLen)
      return small_attention(q, k, v, scale);
    // Row blocks per thread, unless the whole score matrix is tiny (one bmm costs less
    // than a parallel region).
    if (n * lq * lk * es > kTinyScoreBytes) {
      auto out = grad ? recompute_attention(q, k, v, scale, s.block_bytes) : blocked_attention(q, k, v, scale, s.block_bytes);
      check_finite(out, "attention (row blocks)");
      return out;
    }
  }
  const auto kt = k.transpose(1, 2);
  if (b == AttentionBackend::Math || n * lq * lk * es <= s.score_budget_bytes) return math_block(q, kt, v, scale);
  // (The recomputing kernel is CPU code; a GPU without SDPA keeps the chunked math path.)
  if (grad && !s.upstream_op_order && q.device().is_cpu()) return recompute_attention(q, k, v, scale, s.block_bytes);
  // Chunks of query rows whose [N, rows, Lk] scores fit the budget, but never fewer
  // than 16 rows: with huge N*Lk (64x64 latents, 16 frames, reference tokens) the
  // budget alone would give 1-2 rows per bmm and call overhead would dominate.
  const int64_t row_bytes = n * lk * es;
  const int64_t chunk = std::min(lq, std::max<int64_t>(16, s.score_budget_bytes / std::max<int64_t>(row_bytes, 1)));
  auto out = at::empty({n, lq, v.size(2)}, q.options());
  for (int64_t i = 0; i < lq; i += chunk) {
    const int64_t e = std::min(lq, i + chunk);
    out.narrow(1, i, e - i).copy_(math_block(q.narrow(1, i, e - i), kt, v, scale));
  }
  return out;
}

}  // namespace hallo::nn
