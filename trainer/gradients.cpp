#include "trainer/gradients.h"

#include <ATen/ATen.h>

namespace hallo::trainer {

ClipResult clip_grad_norm(const std::vector<NamedParam>& params, double max_norm) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.param.grad().defined()) norms.push_back(at::norm(p.param.grad(), 2));
  ClipResult r;
  if (norms.empty()) return r;
  const at::Tensor total = at::norm(at::stack(norms), 2);
  r.total_norm = total.item<double>();
  if (max_norm <= 0) return r;
  // Python's float / tensor is tensor.reciprocal() * float.
  const at::Tensor coef = at::clamp((total + 1e-6).reciprocal() * max_norm, c10::nullopt, 1.0);
  r.coef = coef.item<double>();
  for (const auto& p : params)
    if (p.param.grad().defined()) p.param.mutable_grad().mul_(coef);
  return r;
}

std::string first_nonfinite(const std::vector<NamedParam>& params) {
  at::NoGradGuard no_grad;
  for (const auto& p : params) {
    const at::Tensor& g = p.param.grad();
    if (g.defined() && !at::isfinite(g).all().item<bool>()) return p.name + " (gradient)";
    if (!at::isfinite(p.param).all().item<bool>()) return p.name + " (value)";
  }
  return {};
}

}  // namespace hallo::trainer
