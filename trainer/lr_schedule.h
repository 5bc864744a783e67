#pragma once
// Learning-rate schedules of diffusers' get_scheduler (LambdaLR factors), as a pure
// function of the optimizer step, so resuming needs nothing but the step count.
#include <string>

namespace hallo::trainer {

struct LrSchedule {
  std::string kind = "constant";  // constant | constant_with_warmup | linear | cosine
  double base_lr = 1e-5;
  int warmup_steps = 0;    // in scheduler steps
  int total_steps = 1;     // in scheduler steps (linear / cosine)
  double num_cycles = 0.5; // cosine
  // Scheduler steps per optimizer step. Upstream (accelerate) steps the scheduler once
  // per process per optimizer step and counts warmup/total in micro-steps; with one
  // process and no accumulation this is 1 and warmup/total are optimizer steps.
  int steps_per_update = 1;

  // The multiplier diffusers' lambda gives at scheduler step s.
  double factor(long long s) const;
  // Learning rate of optimizer step k (1-based): before it the scheduler has stepped
  // (k - 1) * steps_per_update times.
  double lr_at(long long k) const { return base_lr * factor((k - 1) * static_cast<long long>(steps_per_update)); }
};

}  // namespace hallo::trainer
