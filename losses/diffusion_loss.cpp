#include "losses/diffusion_loss.h"

#include <ATen/ATen.h>

#include <numeric>
#include <vector>

#include "core/error.h"

namespace hallo::losses {

at::Tensor min_snr_weights(const at::Tensor& snr, double gamma, bool v_prediction) {
  const at::Tensor s = v_prediction ? snr + 1 : snr;
  // = stack([s, gamma * ones]).min(dim=1)[0] / s: the min of two float32 values is exact.
  return at::clamp_max(s, gamma) / s;
}

LossTerms diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& snr,
                         const DiffusionLossConfig& cfg) {
  if (pred.sizes() != target.sizes())
    fail("diffusion loss: prediction {} and target {} differ in shape", c10::str(pred.sizes()), c10::str(target.sizes()));
  const at::Tensor p = pred.to(at::kFloat), t = target.to(at::kFloat);
  std::vector<int64_t> dims(static_cast<size_t>(p.dim() - 1));
  std::iota(dims.begin(), dims.end(), int64_t{1});
  LossTerms out;
  const at::Tensor elementwise = at::mse_loss(p, t, at::Reduction::None);  // [B, ...]
  const at::Tensor mse_b = elementwise.detach().mean(dims);                 // [B]
  if (cfg.snr_gamma <= 0) {
    out.weights = at::ones({p.size(0)}, p.options());
    out.loss = elementwise.mean();
    out.per_sample = mse_b;
    return out;
  }
  out.weights = min_snr_weights(snr.to(at::kFloat), cfg.snr_gamma, cfg.v_prediction);
  if (cfg.average_before_weighting) {
    out.loss = (elementwise.mean() * out.weights).mean();
  } else {
    out.loss = (elementwise.mean(dims) * out.weights).mean();
  }
  out.per_sample = mse_b * out.weights;
  return out;
}

at::Tensor offset_noise(const at::Tensor& base, const at::Tensor& offset_randn, double strength) {
  if (strength <= 0) return base;
  return base + strength * offset_randn.to(base.scalar_type());
}

}  // namespace hallo::losses
