#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace hallo {

ProgressBar::ProgressBar(std::string label, uint64_t total, std::string unit, uint64_t initial)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), done_(initial), initial_(initial),
      enabled_(::isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(uint64_t done) {
  done_ = done;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void ProgressBar::draw(bool final) {
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const int width = 30;
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  const double rate = secs > 0 && done_ > initial_ ? static_cast<double>(done_ - initial_) / secs : 0;
  const double eta = (rate > 0 && done_ < total_) ? static_cast<double>(total_ - done_) / rate : 0;
  std::string line = fmt::format("\r{} [{}] {:5.1f}% {}/{}{} {:.2f}{}/s ETA {:.0f}s{}{}", label_, bar, frac * 100, done_,
                                 total_, unit_, rate, unit_, eta, suffix_.empty() ? "" : " ", suffix_);
  line += "\x1b[K";  // clear what a longer previous line left
  std::fputs(line.c_str(), stderr);
  if (final) std::fputs("\n", stderr);
  std::fflush(stderr);
}

}  // namespace hallo
