#pragma once
// Shared helpers for the hallo_media tests: temp dirs, a frame pattern that
// encodes its own index, tones, signal measurements and CLI runners.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "tests/common/temp_dir.h"

namespace hallo::media::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed on destruction.
struct TempDir : ::hallo::test::TempDir {
  TempDir() : ::hallo::test::TempDir("hallo_media_test") {}
};

// Frame k of the counter pattern: 8 vertical bars, bar b white when bit b of k
// is set (black otherwise), above a red strip that checks the channel order.
constexpr int kPatternBits = 8;
std::vector<uint8_t> pattern_frame(int k, int width, int height);
// Reads k back from a (possibly resized, lossy) pattern frame.
int decode_pattern(const std::vector<uint8_t>& rgb, int width, int height);
// Mean RGB of a rectangle.
std::vector<double> mean_rgb(const std::vector<uint8_t>& rgb, int width, int x0, int y0, int x1,
                             int y1);

std::vector<float> sine(double freq, double amplitude, int sample_rate, double seconds);
double rms(const std::vector<float>& x, size_t begin = 0, size_t end = SIZE_MAX);
// Frequency from interpolated positive-going zero crossings over [begin, end).
double zero_crossing_freq(const std::vector<float>& x, int sample_rate, size_t begin, size_t end);

// Runs a shell command; returns its exit status and stdout.
int run_command(const std::string& cmd, std::string* out = nullptr);
bool have_program(const std::string& name);

// Writes `frames` pattern frames (+ optional 440 Hz tone) with VideoWriter.
void write_pattern_video(const fs::path& path, int frames, double fps, int width, int height,
                         bool with_audio, const std::string& preset = "ultrafast");

// Expects `fn` to throw hallo::Error whose message contains `path` and `what`.
template <typename Fn>
void expect_error(Fn&& fn, const fs::path& path, const std::string& what) {
  try {
    fn();
    ADD_FAILURE() << "no hallo::Error for " << path << " (wanted '" << what << "')";
  } catch (const hallo::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(what), std::string::npos) << msg;
  }
}

}  // namespace hallo::media::test
