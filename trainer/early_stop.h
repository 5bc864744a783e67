#pragma once
// Early stop on the held-out loss (val.early_stop_patience): the best loss so far and
// how many evaluations in a row failed to beat it by more than min_delta.
#include <cmath>
#include <cstdint>

namespace hallo::trainer {

struct EarlyStop {
  int patience = 0;  // 0: never stop
  double min_delta = 0;
  double best = 0;
  int64_t best_step = -1;  // -1: no evaluation yet
  int bad = 0;

  // Records the held-out loss of `step`; returns true when it is the new best.
  bool record(int64_t step, double loss) {
    if (std::isfinite(loss) && (best_step < 0 || loss < best - min_delta)) {
      best = loss;
      best_step = step;
      bad = 0;
      return true;
    }
    ++bad;
    return false;
  }
  bool should_stop() const { return patience > 0 && bad >= patience; }
};

}  // namespace hallo::trainer
