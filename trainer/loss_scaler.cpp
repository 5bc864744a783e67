#include "trainer/loss_scaler.h"

#include <cmath>

#include "core/error.h"

namespace hallo::trainer {

bool is_power_of_two(double v) {
  int e = 0;
  return v > 0 && std::isfinite(v) && std::frexp(v, &e) == 0.5;
}

LossScaler::LossScaler(LossScaleConfig c) : c_(c), scale_(c.init_scale) {
  if (!c_.enabled) return;
  if (!is_power_of_two(c_.init_scale)) fail("loss scale: the initial scale {} is not a power of two", c_.init_scale);
  if (!is_power_of_two(c_.growth_factor) || c_.growth_factor < 1 || !is_power_of_two(c_.backoff_factor) ||
      c_.backoff_factor >= 1)
    fail("loss scale: growth {} and backoff {} must be powers of two (>= 1 and < 1)", c_.growth_factor,
         c_.backoff_factor);
  if (c_.growth_interval < 1) fail("loss scale: growth_interval must be >= 1, got {}", c_.growth_interval);
}

void LossScaler::update(bool found_nonfinite) {
  if (!c_.enabled) return;
  if (found_nonfinite) {
    // Floor at 2^-24: below it no fp16 gradient survives anyway, and the run's
    // non-finite counter (not this) decides when to give up.
    scale_ = std::max(scale_ * c_.backoff_factor, std::ldexp(1.0, -24));
    clean_ = 0;
    return;
  }
  if (++clean_ >= c_.growth_interval) {
    scale_ = std::min(scale_ * c_.growth_factor, std::ldexp(1.0, 64));
    clean_ = 0;
  }
}

nlohmann::json LossScaler::state() const {
  if (!c_.enabled) return nlohmann::json::object();
  return {{"scale", scale_}, {"clean_steps", clean_}};
}

void LossScaler::restore(const nlohmann::json& j, const std::string& where) {
  if (!c_.enabled || j.is_null() || j.empty()) return;  // a run without scaling before: start fresh
  const double s = j.value("scale", 0.0);
  if (!is_power_of_two(s)) fail_at(where, "loss_scale.scale {} is not a power of two", s);
  scale_ = s;
  clean_ = j.value("clean_steps", int64_t{0});
}

}  // namespace hallo::trainer
