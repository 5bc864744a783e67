// The weight-free lip-sync score on synthetic talking heads, whose mouths open with
// the loudness of their own speech: high with the video's own audio, near chance with
// another video's speech, and the same at 128 px as at 256 px (generated videos are small).
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/error.h"
#include "data/synth/synth.h"
#include "eval/lipsync.h"
#include "media/video_reader.h"
#include "synth_test_util.h"

namespace hallo::eval {
namespace {

using synth::testing::shared_analyzer;
using synth::testing::small_config;

// Two 4 s talking heads (different sentences) per test process.
struct Clips {
  synth::testing::TempDir dir;
  synth::SynthResult a, b;
  Clips() {
    synth::Synthesizer s(small_config(dir.path(), 11, 4.0));
    a = s.make(0);
    b = s.make(1);
  }
};
const Clips& clips() {
  static Clips c;
  return c;
}

TEST(LipSync, ScoreFindsTheBestLagOfAShiftedSignal) {
  std::vector<float> audio(16000 * 2);
  for (size_t i = 0; i < audio.size(); ++i)  // loudness that rises and falls every ~0.3 s
    audio[i] = static_cast<float>(std::sin(i * 0.05) * (0.5 + 0.5 * std::sin(i * 2 * M_PI / 4800.0 + 0.3 * std::sin(i / 900.0))));
  LipSyncOptions o;
  const auto ref = lipsync_score(std::vector<float>(50, 0.f), audio, 25, o).loudness;
  std::vector<float> mouth(50, 0.f);
  for (int i = 0; i < 48; ++i) mouth[i] = ref[i + 2];  // the mouth runs 2 frames ahead of the sound
  const auto r = lipsync_score(mouth, audio, 25, o);
  EXPECT_EQ(r.lag, 2);
  EXPECT_GT(r.corr, 0.95);
  o.max_lag = 1;
  EXPECT_LT(lipsync_score(mouth, audio, 25, o).corr, r.corr);
}

TEST(LipSync, OwnSpeechScoresHighOtherSpeechNearChance) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto& c = clips();
  LipSyncOptions o;
  const auto own = lipsync_score_file(c.a.video, {}, shared_analyzer(), o);
  EXPECT_EQ(own.frames, 100);
  EXPECT_EQ(own.detected, 100);
  EXPECT_GT(own.corr, 0.7);
  EXPECT_LE(std::abs(own.lag), 1);
  const auto other = lipsync_score_file(c.a.video, c.b.video, shared_analyzer(), o);
  EXPECT_LT(other.corr, 0.35);
  EXPECT_GT(own.corr - other.corr, 0.4);
}

TEST(LipSync, SmallFramesAreUpscaledForTheDetector) {
  REQUIRE_SYNTH_PREREQUISITES();
  std::vector<cv::Mat> full, small;
  media::RgbFrame f;
  media::VideoReader reader(clips().a.video);
  while (reader.next(f) && full.size() < 40) {
    full.push_back(cv::Mat(f.height, f.width, CV_8UC3, f.rgb.data()).clone());
    cv::Mat s;
    cv::resize(full.back(), s, cv::Size(128, 128), 0, 0, cv::INTER_AREA);
    small.push_back(s);
  }
  LipSyncOptions o;
  int found_full = 0, found_small = 0;
  const auto a = mouth_openings(full, shared_analyzer(), o, "full", &found_full);
  const auto b = mouth_openings(small, shared_analyzer(), o, "small", &found_small);
  EXPECT_EQ(found_small, 40);
  double num = 0, da = 0, db = 0, ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i] / a.size(), mb += b[i] / b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) * (a[i] - ma);
    db += (b[i] - mb) * (b[i] - mb);
  }
  EXPECT_GT(num / std::sqrt(da * db), 0.9);  // the same mouth track at half the size
}

TEST(LipSync, NoFaceAnywhereIsAnErrorNamingTheVideo) {
  REQUIRE_SYNTH_PREREQUISITES();
  std::vector<cv::Mat> gray(5, cv::Mat(128, 128, CV_8UC3, cv::Scalar(90, 90, 90)));
  try {
    mouth_openings(gray, shared_analyzer(), {}, "blank.mp4");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blank.mp4"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no face"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hallo::eval
