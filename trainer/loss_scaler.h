#pragma once
// Dynamic loss scaling for fp16 mixed precision (torch.cuda.amp.GradScaler's rule,
// which upstream's accelerate fp16 runs use): backward runs on loss x scale so small
// fp16 gradients do not flush to zero; the reduced gradients are divided by the
// scale before clipping. A step whose gradients overflow is skipped and the scale
// halves; after `growth_interval` clean steps in a row it doubles.
//
// The scale is always a power of two, so scaling and unscaling are exact in float32:
// with no overflow, a scaled float32 run gives the same bits as an unscaled one.
#include <nlohmann/json.hpp>

#include <cstdint>

namespace hallo::trainer {

// v > 0, finite, and 2^k for an integer k (scaling by it is exact in floating point).
bool is_power_of_two(double v);

struct LossScaleConfig {
  bool enabled = false;
  double init_scale = 65536.0;  // 2^16, GradScaler's default
  double growth_factor = 2.0, backoff_factor = 0.5;
  int growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(LossScaleConfig c = {});
  bool enabled() const { return c_.enabled; }
  double scale() const { return c_.enabled ? scale_ : 1.0; }
  // After a step's gradients were checked: overflow halves the scale (the step is
  // skipped by the caller); a clean step counts towards growth.
  void update(bool found_nonfinite);
  int64_t clean_steps() const { return clean_; }
  // Checkpoint state ({} when disabled), in trainer_state.json.
  nlohmann::json state() const;
  void restore(const nlohmann::json& j, const std::string& where);

 private:
  LossScaleConfig c_;
  double scale_;
  int64_t clean_ = 0;
};

}  // namespace hallo::trainer
