#pragma once
// Shared helpers for the hallo_synth tests: temp dirs, a small fast config and
// one talking-head clip generated once per test process.
#include "tests/common/temp_dir.h"
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "data/face/landmarks.h"
#include "data/synth/portrait.h"
#include "data/synth/synth.h"

namespace hallo::synth::testing {

inline std::filesystem::path astronaut_path() { return std::filesystem::path(HALLO_ASSETS_DIR) / "astronaut.png"; }

// Unique, self-removing temp directory.
struct TempDir : ::hallo::test::TempDir {
  TempDir() : ::hallo::test::TempDir("hallo_synth") {}
};

// Small and short so the suite stays fast on one core.
inline SynthConfig small_config(const std::filesystem::path& out, uint64_t seed = 7, double seconds = 2.4) {
  SynthConfig c;
  c.out_dir = out;
  c.seconds = seconds;
  c.size = 256;
  c.seed = seed;
  c.portrait = astronaut_path();
  c.preset = "veryfast";
  return c;
}

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::filesystem::path& p) { return nlohmann::json::parse(read_text(p)); }

// Portrait, espeak-ng and dlib's model are needed by every generating test.
inline bool have_prerequisites(std::string* why) {
  if (!std::filesystem::is_regular_file(astronaut_path())) return *why = "missing " + astronaut_path().string(), false;
  const std::string dat = face::FaceAnalyzerConfig{}.shape_predictor;
  if (!std::filesystem::is_regular_file(dat)) return *why = "missing " + dat, false;
  return true;
}

// dlib's model is ~100 MB: one analyzer per test process.
inline face::FaceAnalyzer& shared_analyzer() {
  static face::FaceAnalyzer a = [] {
    face::FaceAnalyzerConfig c;
    c.detect_max_side = 0;
    return face::FaceAnalyzer(c);
  }();
  return a;
}

// The astronaut at 256 px, face-cropped as SynthConfig does by default.
inline const Portrait& shared_portrait() {
  static const Portrait p = load_portrait(astronaut_path(), 256, SynthConfig{}.crop_scale, shared_analyzer());
  return p;
}

#define REQUIRE_SYNTH_PREREQUISITES()                          \
  do {                                                         \
    std::string why_;                                          \
    if (!::hallo::synth::testing::have_prerequisites(&why_)) { \
      GTEST_SKIP() << why_;                                    \
    }                                                          \
  } while (0)

}  // namespace hallo::synth::testing
