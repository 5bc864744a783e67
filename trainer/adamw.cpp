#include "trainer/adamw.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>

#include "core/error.h"

namespace hallo::trainer {

namespace {

struct Coefficients {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
};

// One pass: every element's update in registers (float32, as torch computes it).
void fused_update(float* p, const float* g, float* m, float* v, int64_t n, const Coefficients& c) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float gi = g[i];
      const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
      const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / c.bias_correction2_sqrt + c.eps;
      p[i] = p[i] * c.decay - c.step_size * mi / denom;
    }
  });
}

}  // namespace

void AdamW::step(const std::vector<NamedParam>& params, double lr, const std::vector<bool>* owned) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    if (owned && !(*owned)[i]) continue;
    const auto& np = params[i];
    at::Tensor p = np.param;
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.is_sparse()) fail("AdamW: sparse gradient for '{}'", np.name);
    ParamState& st = state_[np.name];
    if (!st.exp_avg.defined()) {
      st.exp_avg = at::zeros_like(p, at::MemoryFormat::Preserve);
      st.exp_avg_sq = at::zeros_like(p, at::MemoryFormat::Preserve);
    }
    st.step += 1;
    const double t = static_cast<double>(st.step);
    const double bias_correction1 = 1.0 - std::pow(o_.beta1, t);
    const double bias_correction2 = 1.0 - std::pow(o_.beta2, t);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::sqrt(bias_correction2);
    const bool fusable = p.is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() && g.is_contiguous() &&
                         g.scalar_type() == at::kFloat && st.exp_avg.is_contiguous() &&
                         st.exp_avg_sq.is_contiguous();
    if (fusable) {
      const Coefficients c{static_cast<float>(1.0 - lr * o_.weight_decay), static_cast<float>(o_.beta1),
                           static_cast<float>(1.0 - o_.beta1),         static_cast<float>(o_.beta2),
                           static_cast<float>(1.0 - o_.beta2),         static_cast<float>(step_size),
                           static_cast<float>(bias_correction2_sqrt), static_cast<float>(o_.eps)};
      fused_update(p.data_ptr<float>(), g.data_ptr<float>(), st.exp_avg.data_ptr<float>(),
                   st.exp_avg_sq.data_ptr<float>(), p.numel(), c);
      continue;
    }
    // torch 1.13 _single_tensor_adamw, op for op (the scalars are Python floats = double).
    p.mul_(1.0 - lr * o_.weight_decay);
    st.exp_avg.mul_(o_.beta1).add_(g, 1.0 - o_.beta1);
    st.exp_avg_sq.mul_(o_.beta2).addcmul_(g, g, 1.0 - o_.beta2);
    const at::Tensor denom = (st.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(o_.eps);
    p.addcdiv_(st.exp_avg, denom, -step_size);
  }
}

int64_t AdamW::state_bytes() const {
  int64_t n = 0;
  for (const auto& [k, s] : state_)
    if (s.exp_avg.defined()) n += (s.exp_avg.numel() + s.exp_avg_sq.numel()) * s.exp_avg.element_size();
  return n;
}

}  // namespace hallo::trainer
