#pragma once
// Exponential moving average of the trainable weights (every stage): after optimizer
// step s (1-based), when s > start_step and (s - start_step) % every == 0,
//   shadow <- decay * shadow + (1 - decay) * live
// and before start_step the shadow simply follows the live weights (a warm start,
// so an EMA begun late does not drag the initialisation along). Kept in float32 on the
// weights' device, saved in every checkpoint (ema.safetensors) so a resumed run's
// average equals an uninterrupted one's, and swapped into the net for validation
// renders or the exported model folder when asked.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "trainer/ema_config.h"
#include "trainer/trainable.h"

namespace hallo::trainer {

class Ema {
 public:
  // shadow = copy of the live weights.
  Ema(EmaConfig cfg, const std::vector<NamedParam>& params);

  void update(int64_t step);  // call after optimizer step `step` was applied
  const std::vector<at::Tensor>& shadow() const { return shadow_; }
  const EmaConfig& config() const { return cfg_; }

  // Exchanges the shadow and the live weights (in place, no gradients); twice restores.
  void swap();

  void save(const std::filesystem::path& file) const;  // safetensors keyed by parameter name
  // Strict: every parameter's shadow, shapes equal; throws naming the file otherwise.
  void restore(const std::filesystem::path& file);

 private:
  EmaConfig cfg_;
  std::vector<NamedParam> live_;
  std::vector<at::Tensor> shadow_;
};

// Scoped swap: EMA weights in the net for the lifetime of the guard (no-op for nullptr).
class EmaSwap {
 public:
  explicit EmaSwap(Ema* ema) : ema_(ema) {
    if (ema_) ema_->swap();
  }
  ~EmaSwap() {
    if (ema_) ema_->swap();
  }
  EmaSwap(const EmaSwap&) = delete;
  EmaSwap& operator=(const EmaSwap&) = delete;

 private:
  Ema* ema_;
};

}  // namespace hallo::trainer
