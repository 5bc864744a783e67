#include "trainer/gradients.h"

#include <ATen/ATen.h>

namespace hallo::trainer {

namespace {

// Per-parameter L2 norms of the gradients, in parameter order.
std::vector<at::Tensor> local_norms(const std::vector<NamedParam>& params) {
  std::vector<at::Tensor> norms;
  for (const auto& p : params)
    if (p.param.grad().defined()) norms.push_back(at::norm(p.param.grad(), 2));
  return norms;
}

// ZeRO-2: every rank's owned norms, in parameter order, as if one rank held them all.
std::vector<at::Tensor> global_norms(const std::vector<NamedParam>& params, GradientReducer& r) {
  const int64_t n = static_cast<int64_t>(params.size());
  at::Tensor t = at::zeros({2, n}, at::kFloat);  // [norm; has a gradient]
  for (int64_t i = 0; i < n; ++i) {
    const at::Tensor& g = params[static_cast<size_t>(i)].param.grad();
    if (!g.defined()) continue;
    t[0][i].copy_(at::norm(g, 2));
    t[1][i].fill_(1);
  }
  r.sum_in_place(t);
  std::vector<at::Tensor> norms;
  for (int64_t i = 0; i < n; ++i)
    if (t[1][i].item<float>() > 0) norms.push_back(t[0][i].clone());
  return norms;
}

}  // namespace

ClipResult clip_grad_norm(const std::vector<NamedParam>& params, double max_norm, GradientReducer* sharded) {
  at::NoGradGuard no_grad;
  const std::vector<at::Tensor> norms = sharded ? global_norms(params, *sharded) : local_norms(params);
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
