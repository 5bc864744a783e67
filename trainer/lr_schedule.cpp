#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace hallo::trainer {

double LrSchedule::factor(long long s) const {
  const double step = static_cast<double>(s);
  const double warm = static_cast<double>(warmup_steps);
  if (kind == "constant") return 1.0;
  if (kind != "constant_with_warmup" && kind != "linear" && kind != "cosine") fail("unknown lr_scheduler '{}'", kind);
  if (s < warmup_steps) return step / std::max(1.0, warm);
  if (kind == "constant_with_warmup") return 1.0;
  const double span = std::max(1.0, static_cast<double>(total_steps - warmup_steps));
  if (kind == "linear") return std::max(0.0, (static_cast<double>(total_steps) - step) / span);
  const double progress = (step - warm) / span;  // cosine
  return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * num_cycles * 2.0 * progress)));
}

}  // namespace hallo::trainer
