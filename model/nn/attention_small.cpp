#include "model/nn/attention_small.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace hallo::nn {

namespace {

// Eight independent partial sums: the compiler turns them into vector lanes without
// reassociating a single reduction.
inline float dot(const float* a, const float* b, int64_t d) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float alpha, const float* x, float* y, int64_t d) {
  for (int64_t i = 0; i < d; ++i) y[i] += alpha * x[i];
}

int64_t grain(int64_t lq, int64_t lk, int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, lq * lk * d)); }

// out = softmax(q k^T * scale) v, lse = log-sum-exp of each score row.
void forward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, float scale, at::Tensor& out,
                    at::Tensor& lse) {
  const int64_t N = q.size(0), Lq = q.size(1), Lk = k.size(1), D = q.size(2);
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* lp = lse.data_ptr<float>();
  at::parallel_for(0, N, grain(Lq, Lk, D), [&](int64_t begin, int64_t end) {
    std::vector<float> s(static_cast<size_t>(Lk));
    for (int64_t n = begin; n < end; ++n) {
      const float* qn = qp + n * Lq * D;
      const float* kn = kp + n * Lk * D;
      const float* vn = vp + n * Lk * D;
      for (int64_t i = 0; i < Lq; ++i) {
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < Lk; ++j) {
          s[j] = scale * dot(qn + i * D, kn + j * D, D);
          m = std::max(m, s[j]);
        }
        float sum = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          s[j] = std::exp(s[j] - m);
          sum += s[j];
        }
        const float inv = 1.0f / sum;
        lp[n * Lq + i] = m + std::log(sum);
        float* o = op + (n * Lq + i) * D;
        std::fill(o, o + D, 0.0f);
        for (int64_t j = 0; j < Lk; ++j) axpy(s[j] * inv, vn + j * D, o, D);
      }
    }
  });
}

void backward_kernel(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& lse,
                     const at::Tensor& dout, float scale, at::Tensor& dq, at::Tensor& dk, at::Tensor& dv) {
  const int64_t N = q.size(0), Lq = q.size(1), Lk = k.size(1), D = q.size(2);
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  const float* lp = lse.data_ptr<float>();
  const float* gp = dout.data_ptr<float>();
  float* dqp = dq.data_ptr<float>();
  float* dkp = dk.data_ptr<float>();
  float* dvp = dv.data_ptr<float>();
  at::parallel_for(0, N, grain(Lq, Lk, D), [&](int64_t begin, int64_t end) {
    std::vector<float> p(static_cast<size_t>(Lk)), dp(static_cast<size_t>(Lk));
    for (int64_t n = begin; n < end; ++n) {
      const float* qn = qp + n * Lq * D;
      const float* kn = kp + n * Lk * D;
      const float* vn = vp + n * Lk * D;
      float* dkn = dkp + n * Lk * D;
      float* dvn = dvp + n * Lk * D;
      std::fill(dkn, dkn + Lk * D, 0.0f);
      std::fill(dvn, dvn + Lk * D, 0.0f);
      for (int64_t i = 0; i < Lq; ++i) {
        const float* qi = qn + i * D;
        const float* gi = gp + (n * Lq + i) * D;
        const float l = lp[n * Lq + i];
        float dsum = 0;
        for (int64_t j = 0; j < Lk; ++j) {
          p[j] = std::exp(scale * dot(qi, kn + j * D, D) - l);
          dp[j] = dot(gi, vn + j * D, D);
          dsum += p[j] * dp[j];
        }
        float* dqi = dqp + (n * Lq + i) * D;
        std::fill(dqi, dqi + D, 0.0f);
        for (int64_t j = 0; j < Lk; ++j) {
          const float ds = p[j] * (dp[j] - dsum) * scale;
          axpy(ds, kn + j * D, dqi, D);
          axpy(ds, qi, dkn + j * D, D);
          axpy(p[j], gi, dvn + j * D, D);
        }
      }
    }
  });
}

struct SmallAttention : torch::autograd::Function<SmallAttention> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q,
                                                const at::Tensor& k, const at::Tensor& v, double scale) {
    const at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    at::Tensor out = at::empty_like(qc), lse = at::empty({q.size(0), q.size(1)}, q.options());
    forward_kernel(qc, kc, vc, static_cast<float>(scale), out, lse);
    ctx->save_for_backward({qc, kc, vc, lse});
    ctx->saved_data["scale"] = scale;
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto s = ctx->get_saved_variables();
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    at::Tensor dq = at::empty_like(s[0]), dk = at::empty_like(s[1]), dv = at::empty_like(s[2]);
    backward_kernel(s[0], s[1], s[2], s[3], grad[0].contiguous(), scale, dq, dk, dv);
    return {dq, dk, dv, at::Tensor()};
  }
};

}  // namespace

at::Tensor small_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  return SmallAttention::apply(q, k, v, scale)[0];
}

}  // namespace hallo::nn
