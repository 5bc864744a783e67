#pragma once
// The EMA settings (trainer/ema.h), on their own so the config does not pull in the nets.
#include <cstdint>

namespace hallo::trainer {

struct EmaConfig {
  bool enabled = false;
  double decay = 0.9999;
  int64_t start_step = 0;
  int every = 1;
  bool for_validation = false;  // validation renders and held-out losses use the EMA weights
};

}  // namespace hallo::trainer
