#pragma once
// Shared helpers for the hallo_face tests.
#include "tests/common/temp_dir.h"
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>

#include "data/face/landmarks.h"

namespace hallo::face::testing {

inline std::string astronaut_path() { return std::string(HALLO_ASSETS_DIR) + "/astronaut.png"; }

// RGB CV_8UC3, or empty when the asset is missing (callers GTEST_SKIP).
inline cv::Mat load_astronaut() {
  cv::Mat bgr = cv::imread(astronaut_path(), cv::IMREAD_COLOR);
  if (bgr.empty()) return {};
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

// Unique, self-removing temp directory.
struct TempDir : ::hallo::test::TempDir {
  TempDir() : ::hallo::test::TempDir("hallo_face") {}
};

// dlib's model is ~100 MB; load it once per test process.
inline FaceAnalyzer& shared_analyzer() {
  static FaceAnalyzer analyzer;
  return analyzer;
}

inline bool have_shape_predictor() {
  return std::filesystem::is_regular_file(FaceAnalyzerConfig{}.shape_predictor);
}

}  // namespace hallo::face::testing
