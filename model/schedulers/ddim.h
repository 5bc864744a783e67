#pragma once
// DDIM sampler (Song et al. 2020) reproducing diffusers 0.27 DDIMScheduler
// bit for bit in float32: same timestep spacings, same 0-dim float32 scalar
// arithmetic, same quirks (see set_timesteps / step).
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <string>

#include "model/schedulers/ddpm.h"
#include "model/schedulers/scheduler_config.h"

namespace hallo::sched {

struct DDIMStepOutput {
  at::Tensor prev_sample;           // x_{t-1}, same shape/dtype as the sample
  at::Tensor pred_original_sample;  // predicted x_0 (after clipping, if enabled)
};

struct DDIMStepOptions {
  double eta = 0.0;  // 0: deterministic DDIM; 1: DDPM-like posterior variance
  // Re-derive epsilon from the clipped x_0 (only matters with clip_sample).
  bool use_clipped_model_output = false;
  // Noise for eta > 0: either drawn from `generator` (at::randn on the generator's
  // device, then moved, like diffusers' randn_tensor) or given as `variance_noise`
  // (same shape as the sample). Both at once is an error; neither uses the default generator.
  std::optional<at::Generator> generator;
  at::Tensor variance_noise;
};

class DDIMScheduler {
 public:
  explicit DDIMScheduler(const SchedulerConfig& cfg, const std::string& where = "scheduler config");

  const SchedulerConfig& config() const { return schedule_.config(); }
  const NoiseSchedule& schedule() const { return schedule_; }  // add_noise / get_velocity / snr
  const at::Tensor& alphas_cumprod() const { return schedule_.alphas_cumprod(); }  // float32 [T]
  // alpha_bar used after the last step: 1 (set_alpha_to_one) or alphas_cumprod[0]. float32 0-dim.
  const at::Tensor& final_alpha_cumprod() const { return final_alpha_cumprod_; }
  double init_noise_sigma() const { return 1.0; }

  // Chooses the inference timesteps (descending). Exactly diffusers 0.27:
  //  leading:  (0..n-1) * (T / n) reversed, + steps_offset (may reach T: step() then fails);
  //  trailing: round(arange(T, 0, -T/n)) - 1, with numpy's float arange semantics, which for
  //            some n (61, 103, ...) yields n + 1 values ending in -1; steps_offset is ignored;
  //  linspace: round(linspace(0, T-1, n)) reversed; steps_offset is ignored.
  void set_timesteps(int num_inference_steps);
  int num_inference_steps() const { return num_inference_steps_; }
  const at::Tensor& timesteps() const { return timesteps_; }  // int64 CPU [n] (n+1 in the quirk above)

  // DDIM is not a sigma-scaled scheduler: identity (kept for pipeline symmetry).
  at::Tensor scale_model_input(const at::Tensor& sample, int64_t /*t*/) const { return sample; }

  // One reverse step from timestep t. The previous timestep is t - T / n (integer
  // division), as upstream, even for trailing spacing where the next timestep in
  // timesteps() can differ. model_output/sample: same shape, any rank.
  DDIMStepOutput step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                      const DDIMStepOptions& opt) const;
  DDIMStepOutput step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample, double eta = 0.0) const {
    DDIMStepOptions opt;
    opt.eta = eta;
    return step(model_output, t, sample, opt);
  }

 private:
  at::Tensor alpha_at(int64_t t) const;  // alphas_cumprod[t] as a float32 0-dim tensor

  std::string where_;
  NoiseSchedule schedule_;
  at::Tensor final_alpha_cumprod_;
  int num_inference_steps_ = 0;
  at::Tensor timesteps_;
};

}  // namespace hallo::sched
