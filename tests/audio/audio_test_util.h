#pragma once
// Shared helpers for hallo_audio_tests: temp dirs, test tones, signal metrics.
#include "core/error.h"
#include "tests/common/error_message.h"
#include "tests/common/temp_dir.h"
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace hallo::audio::testing {

// Unique, self-removing temp directory.
struct TempDir : ::hallo::test::TempDir {
  TempDir() : ::hallo::test::TempDir("hallo_audio") {}
};

const auto message_of = ::hallo::test::error_message;

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

struct Tone {
  double hz, amplitude;
};
// Sum of sines (zero phase) at `rate` Hz.
inline std::vector<float> tones(const std::vector<Tone>& parts, double seconds, int rate) {
  std::vector<float> w(static_cast<size_t>(std::llround(seconds * rate)), 0.f);
  for (size_t i = 0; i < w.size(); ++i)
    for (const auto& t : parts) w[i] += static_cast<float>(t.amplitude * std::sin(2 * M_PI * t.hz * i / rate));
  return w;
}

inline double norm(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += static_cast<double>(v) * v;
  return std::sqrt(s);
}

// ||a - scale * b|| / ||scale * b||
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b, double scale = 1.0) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = a[i] - scale * b[i];
    num += d * d;
    den += scale * b[i] * scale * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Amplitude of the `hz` component (projection onto sin/cos over whole cycles' worth of samples).
inline double amplitude_at(const std::vector<float>& w, double hz, int rate) {
  double s = 0, c = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    s += w[i] * std::sin(2 * M_PI * hz * i / rate);
    c += w[i] * std::cos(2 * M_PI * hz * i / rate);
  }
  return 2 * std::sqrt(s * s + c * c) / static_cast<double>(w.size());
}

}  // namespace hallo::audio::testing
