#include "trainer/gradients.h"

#include <ATen/ATen.h>

#include <cstring>

namespace hallo::trainer {

namespace {

// The L2 norm of each gradient, in parameter order, of the parameters that have one
// (one float each, the value torch's per-gradient norm gives). Sharded (ZeRO-2): each
// rank has its owned ones, and [norm; has one] per parameter is summed over ranks
// (non-zero on the owner only, so the sum is exact).
std::vector<float> gradient_norms(const std::vector<NamedParam>& params, GradientReducer* sharded) {
  const size_t n = params.size();
  std::vector<float> v(2 * n, 0.f);  // [norm of each; 1 where it has a gradient]
  for (size_t i = 0; i < n; ++i) {
    const at::Tensor& g = params[i].param.grad();
    if (!g.defined()) continue;
    v[i] = at::norm(g, 2).item<float>();
    v[n + i] = 1.f;
  }
  if (sharded) {
    at::Tensor t = at::tensor(v);
    sharded->sum_in_place(t);
    std::memcpy(v.data(), t.data_ptr<float>(), v.size() * sizeof(float));
  }
  std::vector<float> out;
  for (size_t i = 0; i < n; ++i)
    if (v[n + i] > 0) out.push_back(v[i]);
  return out;
}

}  // namespace

ClipResult clip_grad_norm(const std::vector<NamedParam>& params, double max_norm, GradientReducer* sharded) {
  at::NoGradGuard no_grad;
  const std::vector<float> norms = gradient_norms(params, sharded);
  ClipResult r;
  if (norms.empty()) return r;
  // torch: the norm of the stacked per-gradient norms.
  const at::Tensor total = at::norm(at::tensor(norms), 2);
  r.total_norm = total.item<double>();
  if (max_norm <= 0) return r;
  // Python's float / tensor is tensor.reciprocal() * float.
  const at::Tensor coef = at::clamp((total + 1e-6).reciprocal() * max_norm, c10::nullopt, 1.0);
  r.coef = coef.item<double>();
  for (const auto& p : params)
    if (p.param.grad().defined()) p.param.mutable_grad().mul_(coef);
  return r;
}

std::string first_nonfinite(const std::vector<NamedParam>& params, GradientReducer* sharded) {
  at::NoGradGuard no_grad;
  std::string found;
  for (const auto& p : params) {
    const at::Tensor& g = p.param.grad();
    if (g.defined() && !at::isfinite(g).all().item<bool>()) {
      found = p.name + " (gradient)";
      break;
    }
    if (!at::isfinite(p.param).all().item<bool>()) {
      found = p.name + " (value)";
      break;
    }
  }
  if (!sharded) return found;
  for (const auto& s : sharded->gather(found))
    if (!s.empty()) return s;
  return {};
}

}  // namespace hallo::trainer
