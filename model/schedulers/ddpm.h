#pragma once
// The forward (noising) process shared by DDPM training and DDIM sampling:
// betas -> alphas_cumprod exactly as diffusers 0.27 builds them, plus
// add_noise / get_velocity / snr for the training loss.
#include <ATen/core/Tensor.h>

#include <string>

#include "model/schedulers/scheduler_config.h"

namespace hallo::sched {

// Betas as diffusers computes them: float32 throughout (torch.linspace in
// float32; scaled_linear squares a float32 linspace of sqrt(beta)); the cosine
// schedule is computed in float64 per step and rounded to float32 once.
// Optionally rescaled to zero terminal SNR. Returns float32 CPU [num_train_timesteps].
at::Tensor make_betas(const SchedulerConfig& cfg);
// "Common Diffusion Noise Schedules and Sample Steps are Flawed" Alg. 1, in the
// betas' dtype: shifts sqrt(alphas_cumprod) so its last value is exactly 0.
at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas);

class NoiseSchedule {
 public:
  // `where` names the config in error messages (e.g. "scheduler/scheduler_config.json").
  explicit NoiseSchedule(const SchedulerConfig& cfg, const std::string& where = "scheduler config");

  const SchedulerConfig& config() const { return cfg_; }
  int num_train_timesteps() const { return cfg_.num_train_timesteps; }
  // All float32 CPU [num_train_timesteps].
  const at::Tensor& betas() const { return betas_; }
  const at::Tensor& alphas() const { return alphas_; }
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }

  // x_t = sqrt(ab_t) * x0 + sqrt(1 - ab_t) * noise.
  // x0, noise: [B, ...] (any rank, e.g. [B,C,H,W] or [B,C,F,H,W]); timesteps: int64 [B]
  // (or one element for the whole batch), on any device. Computed in x0's dtype.
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const;
  // v = sqrt(ab_t) * noise - sqrt(1 - ab_t) * x0 (v-prediction target); shapes as add_noise.
  at::Tensor get_velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const;
  // ab_t / (1 - ab_t), computed as diffusers.training_utils.compute_snr does
  // ((sqrt(ab) / sqrt(1 - ab))**2, float32). Same shape and device as `timesteps`.
  at::Tensor snr(const at::Tensor& timesteps) const;

 private:
  // sqrt(ab_t) and sqrt(1 - ab_t) in `like`'s dtype/device, shaped [B, 1, ..., 1] to broadcast over `like`.
  std::pair<at::Tensor, at::Tensor> coefficients(const at::Tensor& like, const at::Tensor& timesteps,
                                                 const char* what) const;

  SchedulerConfig cfg_;
  at::Tensor betas_, alphas_, alphas_cumprod_;
};

}  // namespace hallo::sched
