#pragma once
// The objective that fits a VAE (the demo's tiny one; real runs use the frozen SD
// VAE): latent-diffusion's autoencoder loss without the perceptual and GAN terms,
//   loss = mean_pixels(w * |x - x_hat|) + kl_weight * KL / (3 H W),
// KL = KL(N(mean, exp(logvar)) || N(0, 1)) summed over the latent and averaged over
// the batch. LDM sums the L1 term per image and weights the summed KL by 1e-6;
// dividing both by the pixel count keeps that ratio, so kl_weight means the same.
// w = 1 + face_weight * face mask: the face (and the lips in it) is a small part of
// a frame, so a plain pixel average spends the capacity on background.
#include <ATen/core/Tensor.h>

#include "model/vae/autoencoder_kl.h"

namespace hallo::losses {

struct VaeLossConfig {
  double kl_weight = 1e-6;
  double face_weight = 0.0;  // 0: every pixel counts the same
};

struct VaeLossTerms {
  at::Tensor loss;   // scalar, differentiable
  at::Tensor recon;  // scalar: mean |x - x_hat| (unweighted, detached)
  at::Tensor kl;     // scalar: mean over the batch of the summed KL (detached)
};

// x, x_hat: [B, 3, H, W]; face: [B, 1, H, W] in [0, 1] or undefined.
VaeLossTerms vae_loss(const at::Tensor& x, const at::Tensor& x_hat, const model::DiagonalGaussian& posterior,
                      const at::Tensor& face, const VaeLossConfig& cfg);

}  // namespace hallo::losses
