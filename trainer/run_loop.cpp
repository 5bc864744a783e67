#include "trainer/run_loop.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <csignal>

#include "core/error.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

double peak_rss_gib() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

std::optional<fs::path> resolve_resume(const std::string& option, const std::string& config_value,
                                       const CheckpointStore& store) {
  const std::string resume = !option.empty() ? option : (config_value == "latest" ? "auto" : "");
  if (resume == "auto") {
    auto latest = store.latest();
    if (!latest) spdlog::info("no checkpoint in {}: starting from step 0", store.dir().string());
    return latest;
  }
  if (resume.empty()) return std::nullopt;
  if (!fs::is_directory(resume)) fail_at(resume, "no such checkpoint folder (--resume)");
  verify_checkpoint(resume);
  return fs::path(resume);
}

StepPrinter::StepPrinter(int64_t first_step, int64_t max_steps)
    : first_(first_step), max_(max_steps), start_(std::chrono::steady_clock::now()), last_(start_) {}

std::optional<double> StepPrinter::due(int64_t step, bool bar_enabled) {
  const auto now = std::chrono::steady_clock::now();
  if (bar_enabled || !(now - last_ > std::chrono::seconds(30) || step == max_ || step == first_ + 1)) return std::nullopt;
  last_ = now;
  const double done = std::chrono::duration<double>(now - start_).count();
  return done / static_cast<double>(step - first_) * static_cast<double>(max_ - step);
}

TrainResult stopped_by_signal(int sig, int64_t step, TrainResult result, const fs::path& last_checkpoint) {
  spdlog::warn("stopped by {} at step {}; resume with --resume auto", sig == SIGINT ? "SIGINT" : "SIGTERM", step);
  result.exit_code = sig == SIGINT ? 130 : 143;
  result.step = step;
  result.last_checkpoint = last_checkpoint;
  return result;
}

}  // namespace hallo::trainer
