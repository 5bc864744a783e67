#pragma once
// A one-line progress bar with rate and ETA on stderr. Draws only when stderr
// is a terminal (CI logs stay clean) and at most ~10 times a second.
#include <chrono>
#include <cstdint>
#include <string>

namespace hallo {

class ProgressBar {
 public:
  // `initial`: work already done before this bar started (a resumed run); the rate
  // and ETA count only what this bar sees.
  ProgressBar(std::string label, uint64_t total, std::string unit = "", uint64_t initial = 0);
  ~ProgressBar();
  void advance(uint64_t n = 1) { update(done_ + n); }
  void update(uint64_t done);
  void finish();
  // Extra text after the ETA (e.g. "loss 0.123 lr 1e-05").
  void set_suffix(std::string s) { suffix_ = std::move(s); }
  bool enabled() const { return enabled_; }
  void disable() { enabled_ = false; }  // e.g. on every rank but rank 0

 private:
  void draw(bool final);
  std::string label_, unit_, suffix_;
  uint64_t total_, done_ = 0, initial_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace hallo
