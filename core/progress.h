#pragma once
// A one-line progress bar with rate and ETA on stderr. Draws only when stderr
// is a terminal (CI logs stay clean) and at most ~10 times a second.
#include <chrono>
#include <cstdint>
#include <string>

namespace hallo {

class ProgressBar {
 public:
  ProgressBar(std::string label, uint64_t total, std::string unit = "");
  ~ProgressBar();
  void advance(uint64_t n = 1) { update(done_ + n); }
  void update(uint64_t done);
  void finish();

 private:
  void draw(bool final);
  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace hallo
