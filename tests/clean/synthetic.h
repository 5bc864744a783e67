#pragma once
// Synthetic talking-head observations shared by the cleaning tests.
#include <random>
#include <vector>

#include "data/clean/clean.h"

namespace hallo::clean::test {

// A random syllable-like loudness envelope in [0, 1]: a new level every 3
// frames, linearly interpolated. Not periodic, so a ±2 frame lag search cannot
// turn an anti-correlated mouth into a correlated one.
inline std::vector<float> envelope(int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> knots(n / 3 + 2);
  for (float& k : knots) k = u(rng);
  std::vector<float> e(n);
  for (int i = 0; i < n; ++i) {
    const float t = (i % 3) / 3.f;
    e[i] = knots[i / 3] + t * (knots[i / 3 + 1] - knots[i / 3]);
  }
  return e;
}

// A clean talking head: one frontal face, steady box, mouth following speech.
struct Video {
  std::vector<hallo::clean::FrameObs> frames;
  std::vector<float> rms;
  hallo::clean::FrameStats motion;  // empty: nothing measured

  explicit Video(int n, unsigned seed = 1) {
    const auto env = envelope(n, seed);
    std::mt19937 rng(seed + 100);
    std::normal_distribution<float> jitter(0.f, 0.5f);
    for (int i = 0; i < n; ++i) {
      hallo::clean::FrameObs f;
      f.num_faces = 1;
      f.face_box = cv::Rect2f(200 + jitter(rng), 120 + jitter(rng), 160, 160);
      f.yaw = 5 + jitter(rng);
      f.pitch = -3;
      f.mouth_open = 0.02f + 0.3f * env[i];
      frames.push_back(f);
      rms.push_back(0.03f + 0.2f * env[i]);
    }
  }
  int n() const { return static_cast<int>(frames.size()); }
  hallo::clean::CleanResult clean(const hallo::clean::CleanConfig& cfg = {}) const {
    return hallo::clean::clean_video(frames, motion, rms, n(), cfg);
  }
};

}  // namespace hallo::clean::test
