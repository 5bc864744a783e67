#include "model/schedulers/ddpm.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace hallo::sched {

namespace {

// diffusers betas_for_alpha_bar(cosine): evaluated per step in float64 (Python
// floats), capped at 0.999, then one rounding to float32 by torch.tensor.
at::Tensor cosine_betas(int n) {
  constexpr double kPi = 3.141592653589793;  // == Python math.pi (M_PI is not standard C++)
  auto alpha_bar = [&](double t) { return std::pow(std::cos((t + 0.008) / 1.008 * kPi / 2), 2.0); };
  std::vector<double> b(n);
  for (int i = 0; i < n; ++i) {
    const double t1 = static_cast<double>(i) / n, t2 = static_cast<double>(i + 1) / n;
    b[i] = std::min(1.0 - alpha_bar(t2) / alpha_bar(t1), 0.999);
  }
  return at::tensor(b, at::kDouble).to(at::kFloat);
}

}  // namespace

at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas) {
  // Every step in betas' dtype (float32), including the 0-dim scale factor, as
  // upstream does with tensors: the last sqrt(alpha_bar) becomes exactly 0, so
  // alphas_cumprod[T-1] == 0 and beta[T-1] == 1.
  at::Tensor alphas = at::rsub(betas, 1.0);
  at::Tensor abar_sqrt = at::cumprod(alphas, 0).sqrt();
  const at::Tensor a0 = abar_sqrt[0].clone(), aT = abar_sqrt[-1].clone();  // 0-dim
  abar_sqrt.sub_(aT);
  abar_sqrt.mul_(a0 / (a0 - aT));
  const at::Tensor abar = at::pow(abar_sqrt, 2);
  const int64_t n = abar.size(0);
  // Undo the cumprod: alpha_t = abar_t / abar_{t-1}, alpha_0 = abar_0.
  at::Tensor ratios = abar.slice(0, 1, n) / abar.slice(0, 0, n - 1);
  alphas = at::cat({abar.slice(0, 0, 1), ratios});
  return at::rsub(alphas, 1);
}

at::Tensor make_betas(const SchedulerConfig& cfg) {
  const int64_t n = cfg.num_train_timesteps;
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor betas;
  if (cfg.trained_betas) {
    betas = at::tensor(*cfg.trained_betas, at::kDouble).to(at::kFloat);
  } else if (cfg.beta_schedule == BetaSchedule::Linear) {
    betas = at::linspace(cfg.beta_start, cfg.beta_end, n, f32);
  } else if (cfg.beta_schedule == BetaSchedule::ScaledLinear) {
    // Python's beta**0.5 is C pow(); the square happens in float32.
    betas = at::pow(at::linspace(std::pow(cfg.beta_start, 0.5), std::pow(cfg.beta_end, 0.5), n, f32), 2);
  } else {
    betas = cosine_betas(cfg.num_train_timesteps);
  }
  if (cfg.rescale_betas_zero_snr) betas = rescale_zero_terminal_snr(betas);
  return betas;
}

NoiseSchedule::NoiseSchedule(const SchedulerConfig& cfg, const std::string& where) : cfg_(cfg) {
  cfg_.validate(where);
  betas_ = make_betas(cfg_);
  alphas_ = at::rsub(betas_, 1.0);
  alphas_cumprod_ = at::cumprod(alphas_, 0);  // float32 in, float32 out (CPU accumulates in double)
}

std::pair<at::Tensor, at::Tensor> NoiseSchedule::coefficients(const at::Tensor& like, const at::Tensor& timesteps,
                                                              const char* what) const {
  if (!at::isIntegralType(timesteps.scalar_type(), /*includeBool=*/false))
    fail("NoiseSchedule::{}: timesteps must be an integer tensor, got {}", what, c10::toString(timesteps.scalar_type()));
  if (like.dim() < 1) fail("NoiseSchedule::{}: sample must have a batch dimension", what);
  const int64_t n = timesteps.numel();
  if (n != 1 && n != like.size(0))
    fail("NoiseSchedule::{}: {} timesteps for a batch of {} (expected 1 or one per sample)", what, n, like.size(0));
  // Upstream casts alphas_cumprod to the sample's dtype *before* indexing and
  // taking square roots, so half-precision samples get half-precision coefficients.
  const at::Tensor ac = alphas_cumprod_.to(like.device()).to(like.scalar_type());
  const at::Tensor ab = ac.index_select(0, timesteps.to(like.device()).flatten());  // [n]
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = n;  // [n, 1, ..., 1] broadcasts over any sample rank
  return {at::pow(ab, 0.5).view(shape), at::pow(at::rsub(ab, 1), 0.5).view(shape)};
}

at::Tensor NoiseSchedule::add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const {
  if (!noise.sizes().equals(x0.sizes()))
    fail("NoiseSchedule::add_noise: noise shape {} differs from sample shape {}", c10::str(noise.sizes()), c10::str(x0.sizes()));
  auto [sqrt_ab, sqrt_1m_ab] = coefficients(x0, timesteps, "add_noise");
  return sqrt_ab * x0 + sqrt_1m_ab * noise;
}

at::Tensor NoiseSchedule::get_velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& timesteps) const {
  if (!noise.sizes().equals(x0.sizes()))
    fail("NoiseSchedule::get_velocity: noise shape {} differs from sample shape {}", c10::str(noise.sizes()), c10::str(x0.sizes()));
  auto [sqrt_ab, sqrt_1m_ab] = coefficients(x0, timesteps, "get_velocity");
  return sqrt_ab * noise - sqrt_1m_ab * x0;
}

at::Tensor NoiseSchedule::snr(const at::Tensor& timesteps) const {
  if (!at::isIntegralType(timesteps.scalar_type(), /*includeBool=*/false))
    fail("NoiseSchedule::snr: timesteps must be an integer tensor, got {}", c10::toString(timesteps.scalar_type()));
  // compute_snr takes the square roots on the float32 table first, indexes, then squares the ratio.
  const at::Tensor sqrt_ac = at::pow(alphas_cumprod_, 0.5).to(timesteps.device());
  const at::Tensor sqrt_1m = at::pow(at::rsub(alphas_cumprod_, 1.0), 0.5).to(timesteps.device());
  const at::Tensor idx = timesteps.flatten();
  const at::Tensor alpha = sqrt_ac.index_select(0, idx).to(at::kFloat).view(timesteps.sizes());
  const at::Tensor sigma = sqrt_1m.index_select(0, idx).to(at::kFloat).view(timesteps.sizes());
  return at::pow(alpha / sigma, 2);
}

}  // namespace hallo::sched
