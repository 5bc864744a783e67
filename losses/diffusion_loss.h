#pragma once
// The diffusion training objective of Hallo (and diffusers' training examples):
// MSE between the UNet's prediction and the target (v for v-prediction), weighted
// per sample by min-SNR (Hang et al. 2023): w = min(snr', gamma) / snr', where
// snr' = snr + 1 for v-prediction targets. Plus the offset-noise helper.
#include <ATen/core/Tensor.h>

namespace hallo::losses {

struct DiffusionLossConfig {
  double snr_gamma = 5.0;     // 0: plain MSE over everything, no weighting
  bool v_prediction = true;   // SNR + 1 before weighting (the v target's effective SNR)
  // Upstream stage-2 quirk: the MSE is averaged over the whole batch FIRST and then
  // multiplied by the mean weight, instead of weighting each sample's MSE.
  bool average_before_weighting = false;
};

// [B] weights from [B] SNR values (float32, as diffusers' compute_snr returns them).
at::Tensor min_snr_weights(const at::Tensor& snr, double gamma, bool v_prediction);

struct LossTerms {
  at::Tensor loss;        // scalar, differentiable
  at::Tensor per_sample;  // [B] weighted per-sample losses, detached (for per-timestep logging)
  at::Tensor weights;     // [B] min-SNR weights (ones when snr_gamma == 0)
};

// pred, target: [B, ...] (computed in float32 like upstream's .float()); snr: [B].
LossTerms diffusion_loss(const at::Tensor& pred, const at::Tensor& target, const at::Tensor& snr,
                         const DiffusionLossConfig& cfg);

// noise = base + strength * offset_randn, offset_randn: [B, C, 1, 1, 1] (one value per
// sample and channel, which lets the model learn overall brightness; Guttenberg 2023).
at::Tensor offset_noise(const at::Tensor& base, const at::Tensor& offset_randn, double strength);

}  // namespace hallo::losses
