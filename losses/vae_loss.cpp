#include "losses/vae_loss.h"

#include <ATen/ATen.h>

namespace hallo::losses {

VaeLossTerms vae_loss(const at::Tensor& x, const at::Tensor& x_hat, const model::DiagonalGaussian& posterior,
                      const at::Tensor& face, const VaeLossConfig& cfg) {
  const auto b = x.size(0);
  const double pixels = static_cast<double>(x.size(1) * x.size(2) * x.size(3));
  at::Tensor err = (x - x_hat).abs();  // [B, 3, H, W]
  VaeLossTerms t;
  t.recon = err.mean().detach();
  if (face.defined() && cfg.face_weight != 0) err = err * (1 + cfg.face_weight * face);
  // KL of a diagonal Gaussian against the unit one, per element: (mu^2 + var - 1 - logvar) / 2.
  const at::Tensor kl = 0.5 * (posterior.mean.pow(2) + posterior.logvar.exp() - 1 - posterior.logvar);
  const at::Tensor kl_per_image = kl.reshape({b, -1}).sum(1).mean();
  t.kl = kl_per_image.detach();
  t.loss = err.mean() + cfg.kl_weight * kl_per_image / pixels;
  return t;
}

}  // namespace hallo::losses
