#pragma once
// The pieces both training loops (trainer.cpp: stages 1 and 2, vae_trainer.cpp: stage
// vae) share around the step: which checkpoint to resume from, the log line printed
// when no progress bar is drawn, the result of a run stopped by a signal, peak memory.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "trainer/checkpoint.h"
#include "trainer/trainer.h"

namespace hallo::trainer {

double peak_rss_gib();

// `option` (--resume: "", "auto" or a folder) over the config's resume_from_checkpoint
// ("latest" means auto) -> the complete checkpoint to resume from, or none.
std::optional<std::filesystem::path> resolve_resume(const std::string& option, const std::string& config_value,
                                                    const CheckpointStore& store);

// When a log line is due (no progress bar: every 30 s, the first and the last step),
// the ETA in seconds of the remaining steps.
class StepPrinter {
 public:
  StepPrinter(int64_t first_step, int64_t max_steps);
  std::optional<double> due(int64_t step, bool bar_enabled);

 private:
  int64_t first_, max_;
  std::chrono::steady_clock::time_point start_, last_;
};

// Logs the stop and returns the run's result (exit code 130 / 143).
TrainResult stopped_by_signal(int sig, int64_t step, TrainResult result, const std::filesystem::path& last_checkpoint);

}  // namespace hallo::trainer
