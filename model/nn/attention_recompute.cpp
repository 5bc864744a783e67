#include "model/nn/attention_recompute.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

namespace hallo::nn {

namespace {

// Query rows per block: the block's scores take about `bytes`; at least 64 rows (fewer
// starve BLAS), at most 512 (more leave the cache).
int64_t block_rows(int64_t lq, int64_t lk, int64_t es, int64_t bytes) {
  return std::min(lq, std::clamp<int64_t>(bytes / std::max<int64_t>(1, lk * es), 64, 512));
}

// Worker threads of a parallel region start with default thread-local modes: no
// gradient recording (every tensor here is detached anyway) and the caller's
// inference mode, without which writing into the caller's inference tensors fails.
struct WorkerModes {
  explicit WorkerModes(bool inference) : inference_(inference) {}
  c10::InferenceMode inference_;
  c10::AutoGradMode no_grad_{false};
};

// Rows of one sequence: o = softmax(q k^T * scale) v, lse = log-sum-exp of the scores.
// s: scratch [r, Lk]. Single-threaded (called inside the parallel region).
void forward_block(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale, at::Tensor& s,
                   at::Tensor o, at::Tensor* lse) {
  at::mm_out(s, q, k.t()).mul_(scale);                        // [r, Lk]
  const at::Tensor m = std::get<0>(s.max(1, /*keepdim=*/true));  // [r, 1]
  s.sub_(m).exp_();
  const at::Tensor sum = s.sum(1, /*keepdim=*/true);
  at::mm_out(o, s, v).div_(sum);  // [r, D]
  if (lse) lse->copy_(sum.log_().add_(m).squeeze(1));
}

at::Tensor forward_cpu(const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, double scale,
                       int64_t block_bytes, at::Tensor* lse) {
  const at::Tensor q = q0.detach(), k = k0.detach(), v = v0.detach();
  const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
  const int64_t rows = block_rows(lq, lk, static_cast<int64_t>(q.element_size()), block_bytes);
  const int64_t blocks = (lq + rows - 1) / rows;
  at::Tensor out = at::empty({n, lq, v.size(2)}, q.options());
  if (lse) *lse = at::empty({n, lq}, q.options());
  const bool inference = c10::InferenceMode::is_enabled();
  at::parallel_for(0, n * blocks, 1, [&](int64_t begin, int64_t end) {
    WorkerModes modes(inference);
    at::Tensor scratch = at::empty({rows, lk}, q.options());
    for (int64_t t = begin; t < end; ++t) {
      const int64_t s = t / blocks, i = (t % blocks) * rows, r = std::min(rows, lq - i);
      at::Tensor sc = scratch.narrow(0, 0, r);
      at::Tensor l = lse ? lse->select(0, s).narrow(0, i, r) : at::Tensor();
      forward_block(q.select(0, s).narrow(0, i, r), k.select(0, s), v.select(0, s), scale, sc,
                    out.select(0, s).narrow(0, i, r), lse ? &l : nullptr);
    }
  });
  return out;
}

// dq, dk, dv of one sequence per task (dk and dv sum over its row blocks).
void backward_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& lse,
                  const at::Tensor& dout, const at::Tensor& delta, double scale, int64_t block_bytes, at::Tensor& dq,
                  at::Tensor& dk, at::Tensor& dv) {
  const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
  const int64_t rows = block_rows(lq, lk, static_cast<int64_t>(q.element_size()), block_bytes);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    WorkerModes modes(false);
    at::Tensor p_buf = at::empty({rows, lk}, q.options()), dp_buf = at::empty({rows, lk}, q.options());
    for (int64_t s = begin; s < end; ++s) {
      const at::Tensor qs = q.select(0, s), ks = k.select(0, s), vs = v.select(0, s), gs = dout.select(0, s);
      at::Tensor dks = dk.select(0, s), dvs = dv.select(0, s);
      for (int64_t i = 0; i < lq; i += rows) {
        const int64_t r = std::min(rows, lq - i);
        const at::Tensor qb = qs.narrow(0, i, r), gb = gs.narrow(0, i, r);
        at::Tensor p = p_buf.narrow(0, 0, r), dp = dp_buf.narrow(0, 0, r);
        at::mm_out(p, qb, ks.t()).mul_(scale).sub_(lse.select(0, s).narrow(0, i, r).unsqueeze(1)).exp_();  // P
        dvs.addmm_(p.t(), gb);                                                                            // += P^T dO
        at::mm_out(dp, gb, vs.t()).sub_(delta.select(0, s).narrow(0, i, r).unsqueeze(1)).mul_(p).mul_(scale);  // dS
        at::Tensor dqb = dq.select(0, s).narrow(0, i, r);
        at::mm_out(dqb, dp, ks);
        dks.addmm_(dp.t(), qb);
      }
    }
  });
}

// Off CPU: bmm over all sequences, chunks of query rows.
int64_t device_chunk_rows(int64_t n, int64_t lq, int64_t lk, int64_t es, int64_t block_bytes) {
  return std::min(lq, std::max<int64_t>(16, block_bytes * 32 / std::max<int64_t>(1, n * lk * es)));
}

struct RecomputeAttention : torch::autograd::Function<RecomputeAttention> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                                                const at::Tensor& k, const at::Tensor& v, double scale,
                                                int64_t block_bytes) {
    at::Tensor out, lse;
    if (q.device().is_cpu()) {
      out = forward_cpu(q, k, v, scale, block_bytes, &lse);
    } else {
      const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
      const int64_t rows = device_chunk_rows(n, lq, lk, static_cast<int64_t>(q.element_size()), block_bytes);
      const at::Tensor kt = k.transpose(1, 2);
      out = at::empty({n, lq, v.size(2)}, q.options());
      lse = at::empty({n, lq}, q.options());
      for (int64_t i = 0; i < lq; i += rows) {
        const int64_t r = std::min(rows, lq - i);
        at::Tensor s = at::bmm(q.narrow(1, i, r), kt).mul_(scale);  // [N, r, Lk]
        at::Tensor l = at::logsumexp(s, -1, /*keepdim=*/true);        // [N, r, 1]
        s.sub_(l).exp_();
        out.narrow(1, i, r).copy_(at::bmm(s, v));
        lse.narrow(1, i, r).copy_(l.squeeze(-1));
      }
    }
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["block_bytes"] = block_bytes;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor q = saved[0].detach(), k = saved[1].detach(), v = saved[2].detach();
    const at::Tensor out = saved[3].detach(), lse = saved[4].detach();
    const double scale = ctx->saved_data["scale"].toDouble();
    const int64_t block_bytes = ctx->saved_data["block_bytes"].toInt();
    const at::Tensor dout = grad[0].contiguous();
    const at::Tensor delta = (dout * out).sum(-1);  // [N, Lq] = rowsum(P * dP)
    at::Tensor dq = at::empty_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    if (q.device().is_cpu()) {
      backward_cpu(q, k, v, lse, dout, delta, scale, block_bytes, dq, dk, dv);
      return {dq, dk, dv, at::Tensor(), at::Tensor()};
    }
    const int64_t n = q.size(0), lq = q.size(1), lk = k.size(1);
    const int64_t rows = device_chunk_rows(n, lq, lk, static_cast<int64_t>(q.element_size()), block_bytes);
    const at::Tensor kt = k.transpose(1, 2), vt = v.transpose(1, 2);
    for (int64_t i = 0; i < lq; i += rows) {
      const int64_t r = std::min(rows, lq - i);
      const at::Tensor qc = q.narrow(1, i, r), gc = dout.narrow(1, i, r);
      at::Tensor p = at::bmm(qc, kt).mul_(scale).sub_(lse.narrow(1, i, r).unsqueeze(-1)).exp_();  // [N, r, Lk]
      dv.baddbmm_(p.transpose(1, 2), gc);
      at::Tensor ds = at::bmm(gc, vt).sub_(delta.narrow(1, i, r).unsqueeze(-1)).mul_(p).mul_(scale);
      dq.narrow(1, i, r).copy_(at::bmm(ds, k));
      dk.baddbmm_(ds.transpose(1, 2), qc);
    }
    return {dq, dk, dv, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor blocked_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                             int64_t block_bytes) {
  return forward_cpu(q, k, v, scale, block_bytes, nullptr);
}

at::Tensor recompute_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale,
                               int64_t block_bytes) {
  return RecomputeAttention::apply(q, k, v, scale, block_bytes)[0];
}

}  // namespace hallo::nn
