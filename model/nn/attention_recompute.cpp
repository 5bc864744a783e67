#include "model/nn/attention_recompute.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace hallo::nn {

namespace {

int64_t chunk_rows(int64_t n, int64_t lq, int64_t lk, int64_t es, int64_t budget) {
  return std::min(lq, std::max<int64_t>(16, budget / std::max<int64_t>(1, n * lk * es)));
}

struct RecomputeAttention : torch::autograd::Function<RecomputeAttention> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                                                const at::Tensor& k, const at::Tensor& v, double scale,
                                                int64_t budget) {
    const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
    const int64_t rows = chunk_rows(n, lq, lk, static_cast<int64_t>(q.element_size()), budget);
    const at::Tensor kt = k.transpose(1, 2);
    at::Tensor out = at::empty({n, lq, v.size(2)}, q.options());
    at::Tensor lse = at::empty({n, lq}, q.options());
    for (int64_t i = 0; i < lq; i += rows) {
      const int64_t r = std::min(rows, lq - i);
      at::Tensor s = at::bmm(q.narrow(1, i, r), kt).mul_(scale);  // [N, r, Lk]
      at::Tensor l = at::logsumexp(s, -1, /*keepdim=*/true);        // [N, r, 1]
      s.sub_(l).exp_();                                             // probabilities
      out.narrow(1, i, r).copy_(at::bmm(s, v));
      lse.narrow(1, i, r).copy_(l.squeeze(-1));
    }
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["rows"] = rows;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const at::Tensor &q = s[0], &k = s[1], &v = s[2], &out = s[3], &lse = s[4];
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t rows = ctx->saved_data["rows"].toInt();
    const at::Tensor dout = grad[0].contiguous();
    const int64_t lq = q.size(1);
    const at::Tensor kt = k.transpose(1, 2), vt = v.transpose(1, 2);
    const at::Tensor delta = (dout * out).sum(-1, /*keepdim=*/true);  // [N, Lq, 1] = rowsum(P * dP)
    at::Tensor dq = at::empty_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    for (int64_t i = 0; i < lq; i += rows) {
      const int64_t r = std::min(rows, lq - i);
      const at::Tensor qc = q.narrow(1, i, r), gc = dout.narrow(1, i, r);
      at::Tensor p = at::bmm(qc, kt).mul_(scale).sub_(lse.narrow(1, i, r).unsqueeze(-1)).exp_();  // [N, r, Lk]
      dv.baddbmm_(p.transpose(1, 2), gc);                                                         // += P^T dO
      at::Tensor ds = at::bmm(gc, vt).sub_(delta.narrow(1, i, r)).mul_(p).mul_(scale);            // dS * scale
      dq.narrow(1, i, r).copy_(at::bmm(ds, k));
      dk.baddbmm_(ds.transpose(1, 2), qc);
    }
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor recompute_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                               int64_t budget_bytes) {
  return RecomputeAttention::apply(q, k, v, scale, budget_bytes)[0];
}

}  // namespace hallo::nn
