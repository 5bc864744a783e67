#include "model/schedulers/ddim.h"

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace hallo::sched {

// Numerics note: upstream does all scalar math on 0-dim float32 tensors taken
// from alphas_cumprod (1 - a, a ** 0.5, ...), then multiplies them into the
// sample. Doing the same with 0-dim ATen tensors (not C++ doubles) gives the
// same float32 roundings and the same dtype promotion (a float16 sample stays
// float16), so results match diffusers bit for bit on the same libtorch.

DDIMScheduler::DDIMScheduler(const SchedulerConfig& cfg, const std::string& where)
    : where_(where), schedule_(cfg, where) {
  final_alpha_cumprod_ = cfg.set_alpha_to_one ? at::scalar_tensor(1.0, at::kFloat) : alphas_cumprod()[0].clone();
  // Before set_timesteps: every training timestep, descending (as upstream).
  timesteps_ = at::arange(cfg.num_train_timesteps - 1, -1, -1, at::kLong);
}

namespace {

// numpy.arange(start, stop, step) for floats: length ceil((stop - start) / step);
// element i is start + i * d where d = (start + step) - start (numpy fills from its
// first two elements). Reproducing that rounding is what makes trailing spacing
// exact, including the extra element for some n.
std::vector<double> np_arange(double start, double stop, double step) {
  const double len_f = std::ceil((stop - start) / step);
  const int64_t len = len_f > 0 ? static_cast<int64_t>(len_f) : 0;
  std::vector<double> v;
  v.reserve(len);
  if (len > 0) v.push_back(start);
  if (len > 1) v.push_back(start + step);
  const double d = (start + step) - start;
  for (int64_t i = 2; i < len; ++i) v.push_back(start + static_cast<double>(i) * d);
  return v;
}

// numpy.round: round half to even (the default FE_TONEAREST mode of nearbyint).
int64_t np_round(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

}  // namespace

void DDIMScheduler::set_timesteps(int n) {
  const int T = config().num_train_timesteps;
  if (n < 1) fail_at(where_, "DDIM set_timesteps: num_inference_steps is {}, expected >= 1", n);
  if (n > T)
    fail_at(where_, "DDIM set_timesteps: num_inference_steps {} is larger than num_train_timesteps {}", n, T);
  std::vector<int64_t> ts;
  switch (config().timestep_spacing) {
    case TimestepSpacing::Linspace: {
      // np.linspace(0, T-1, n): i * ((T-1)/(n-1)) with the last element set to T-1;
      // a single point is `start` (0). Reversed.
      if (n == 1) {
        ts = {0};
        break;
      }
      const double step = static_cast<double>(T - 1) / (n - 1);
      ts.push_back(T - 1);
      for (int i = n - 2; i >= 0; --i) ts.push_back(np_round(static_cast<double>(i) * step));
      break;
    }
    case TimestepSpacing::Leading: {
      const int64_t ratio = T / n;  // integer division
      for (int i = n - 1; i >= 0; --i) ts.push_back(i * ratio + config().steps_offset);
      break;
    }
    case TimestepSpacing::Trailing: {
      const double ratio = static_cast<double>(T) / n;
      for (double v : np_arange(T, 0, -ratio)) ts.push_back(np_round(v) - 1);
      break;
    }
  }
  num_inference_steps_ = n;
  timesteps_ = at::tensor(ts, at::kLong);
}

at::Tensor DDIMScheduler::alpha_at(int64_t t) const {
  // Python indexing: -T..-1 wrap around (reached only by the trailing-spacing quirk).
  const int64_t T = config().num_train_timesteps;
  if (t < -T || t >= T)
    fail_at(where_, "DDIM step: timestep {} is outside the {} training timesteps (leading spacing with "
                    "steps_offset can push the first timestep to {}; diffusers fails here too)", t, T, T);
  return alphas_cumprod()[t];
}

DDIMStepOutput DDIMScheduler::step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                                   const DDIMStepOptions& opt) const {
  if (num_inference_steps_ == 0) fail_at(where_, "DDIM step: call set_timesteps before step");
  if (!model_output.sizes().equals(sample.sizes()))
    fail_at(where_, "DDIM step: model_output shape {} differs from sample shape {}", c10::str(model_output.sizes()),
            c10::str(sample.sizes()));
  const SchedulerConfig& cfg = config();

  // 1. previous timestep: always the "leading" stride, whatever the spacing.
  const int64_t prev_t = t - cfg.num_train_timesteps / num_inference_steps_;

  // 2. alphas and betas as 0-dim float32 tensors.
  const at::Tensor a_t = alpha_at(t);
  const at::Tensor a_prev = prev_t >= 0 ? alpha_at(prev_t) : final_alpha_cumprod_;
  const at::Tensor b_t = at::rsub(a_t, 1);

  // 3. predicted x_0 and epsilon.
  at::Tensor x0, eps;
  switch (cfg.prediction_type) {
    case PredictionType::Epsilon:
      x0 = (sample - at::pow(b_t, 0.5) * model_output) / at::pow(a_t, 0.5);
      eps = model_output;
      break;
    case PredictionType::Sample:
      x0 = model_output;
      eps = (sample - at::pow(a_t, 0.5) * x0) / at::pow(b_t, 0.5);
      break;
    case PredictionType::VPrediction:
      x0 = at::pow(a_t, 0.5) * sample - at::pow(b_t, 0.5) * model_output;
      eps = at::pow(a_t, 0.5) * model_output + at::pow(b_t, 0.5) * sample;
      break;
  }

  // 4. clip x_0 (thresholding was rejected by validate()).
  if (cfg.clip_sample) x0 = x0.clamp(-cfg.clip_sample_range, cfg.clip_sample_range);

  // 5. sigma_t(eta) = eta * sqrt((1 - a_prev)/(1 - a_t) * (1 - a_t / a_prev)), formula (16).
  const at::Tensor b_prev = at::rsub(a_prev, 1);
  const at::Tensor variance = (b_prev / b_t) * at::rsub(a_t / a_prev, 1);
  const at::Tensor std_dev = at::mul(at::pow(variance, 0.5), opt.eta);

  if (opt.use_clipped_model_output) eps = (sample - at::pow(a_t, 0.5) * x0) / at::pow(b_t, 0.5);

  // 6-7. x_{t-1} = sqrt(a_prev) x_0 + sqrt(1 - a_prev - sigma^2) eps, formula (12).
  const at::Tensor direction = at::pow(at::rsub(a_prev, 1) - at::pow(std_dev, 2), 0.5) * eps;
  at::Tensor prev = at::pow(a_prev, 0.5) * x0 + direction;

  if (opt.eta > 0) {
    at::Tensor noise = opt.variance_noise;
    if (noise.defined() && opt.generator)
      fail_at(where_, "DDIM step: pass either a generator or variance_noise, not both");
    if (!noise.defined()) {
      const auto opts = model_output.options();
      if (opt.generator) {
        // diffusers randn_tensor: draw on the generator's device, then move.
        noise = at::randn(model_output.sizes(), *opt.generator, opts.device(opt.generator->device()))
                    .to(model_output.device());
      } else {
        noise = at::randn(model_output.sizes(), opts);
      }
    } else if (!noise.sizes().equals(sample.sizes())) {
      fail_at(where_, "DDIM step: variance_noise shape {} differs from sample shape {}", c10::str(noise.sizes()),
              c10::str(sample.sizes()));
    }
    prev = prev + std_dev * noise;
  }
  return {prev, x0};
}

}  // namespace hallo::sched
