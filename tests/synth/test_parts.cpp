// The pieces of a synthetic clip: randomness, loudness -> mouth curve, head
// motion, and the mouth rig checked with the real landmark detector.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "data/synth/head_motion.h"
#include "data/synth/loudness.h"
#include "data/synth/mouth_rig.h"
#include "data/synth/rng.h"
#include "synth_test_util.h"

namespace hallo::synth {
namespace {

using testing::shared_analyzer;
using testing::shared_portrait;

TEST(Rng, SameSeedSameStreamAndUniformInRange) {
  Rng a(42), b(42), c(43);
  std::set<uint64_t> seen;
  double sum = 0;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    seen.insert(x);
    const double u = c.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_NEAR(sum / 1000, 0.5, 0.05);
  EXPECT_NE(derive_seed(1, 0, 1), derive_seed(1, 0, 2));
  EXPECT_NE(derive_seed(1, 0, 1), derive_seed(1, 1, 1));
  EXPECT_EQ(derive_seed(5, 3, 1), derive_seed(5, 3, 1));
}

TEST(Loudness, FrameRmsOfSineBurstsAndSilencePastTheEnd) {
  const int sr = 16000;
  std::vector<float> x(sr);  // 1 s: 0.5 s of a 0.4-amplitude 440 Hz sine, then silence
  for (int i = 0; i < sr / 2; ++i) x[i] = 0.4f * std::sin(2 * M_PI * 440.0 * i / sr);
  const auto rms = frame_rms(x, sr, 25.0, 30);  // 5 frames more than the audio covers
  ASSERT_EQ(rms.size(), 30u);
  for (int i = 0; i < 12; ++i) EXPECT_NEAR(rms[i], 0.4 / std::sqrt(2.0), 0.005) << i;
  for (int i = 13; i < 30; ++i) EXPECT_EQ(rms[i], 0.0f) << i;
}

TEST(Loudness, MouthCurveIsSmoothedNormalisedAndClosedInSilence) {
  EXPECT_EQ(mouth_curve(std::vector<float>(10, 0.0f)), std::vector<float>(10, 0.0f));
  // Below the reference floor the mouth barely moves: near-silence is not speech.
  for (float v : mouth_curve(std::vector<float>(10, 0.0005f))) EXPECT_EQ(v, 0.0f);

  std::vector<float> ramp(40);
  for (int i = 0; i < 40; ++i) ramp[i] = 0.005f * i;  // 0 .. 0.195
  const auto m = mouth_curve(ramp);
  ASSERT_EQ(m.size(), 40u);
  for (size_t i = 1; i < m.size(); ++i) EXPECT_GE(m[i], m[i - 1]);
  EXPECT_EQ(m.front(), 0.0f);
  EXPECT_EQ(m.back(), 1.0f);  // above the 95th percentile -> clamped open
  // A single loud frame spreads to its neighbours (1/4, 1/2, 1/4).
  std::vector<float> spike(9, 0.0f);
  spike[4] = 1.0f;
  MouthCurveOptions o;
  o.gate = 0;
  o.ref_percentile = 1.0f;
  const auto s = mouth_curve(spike, o);
  EXPECT_FLOAT_EQ(s[4], 1.0f);
  EXPECT_FLOAT_EQ(s[3], 0.5f);
  EXPECT_FLOAT_EQ(s[5], 0.5f);
  EXPECT_FLOAT_EQ(s[2], 0.0f);
}

TEST(Loudness, Correlation) {
  const std::vector<float> a{1, 2, 3, 4, 5}, b{2, 4, 6, 8, 10}, c{5, 4, 3, 2, 1}, k{3, 3, 3, 3, 3};
  EXPECT_NEAR(correlation(a, b), 1.0, 1e-12);
  EXPECT_NEAR(correlation(a, c), -1.0, 1e-12);
  EXPECT_EQ(correlation(a, k), 0.0);
  EXPECT_NEAR(correlation({1, 0, 1, 0}, {1, 0, 0, 1}), 0.0, 1e-12);
}

TEST(HeadMotion, BoundedSmoothSeededAndMapsTheCentre) {
  HeadMotionOptions o;
  const cv::Size frame(512, 512);
  const HeadMotion a(11, frame, {250, 200}, o), b(11, frame, {250, 200}, o), c(12, frame, {250, 200}, o);
  double max_tx = 0, max_rot = 0, max_ds = 0, diff_c = 0;
  HeadTransform prev = a.at(0);
  for (int i = 0; i <= 250; ++i) {  // 10 s at 25 fps
    const double t = i / 25.0;
    const HeadTransform h = a.at(t), h2 = b.at(t), h3 = c.at(t);
    EXPECT_EQ(h.tx, h2.tx);
    EXPECT_EQ(h.rot_deg, h2.rot_deg);
    diff_c += std::abs(h.tx - h3.tx) + std::abs(h.rot_deg - h3.rot_deg);
    max_tx = std::max({max_tx, std::abs(h.tx), std::abs(h.ty)});
    max_rot = std::max(max_rot, std::abs(h.rot_deg));
    max_ds = std::max(max_ds, std::abs(h.scale - 1));
    // Slow: under 0.6 Hz a frame step moves at most 2*pi*0.6*amp/25.
    EXPECT_LT(std::abs(h.tx - prev.tx), 2 * M_PI * 0.6 * 4.1 / 25);
    prev = h;
  }
  EXPECT_LE(max_tx, o.max_shift_frac * 512 + 1e-9);
  EXPECT_GT(max_tx, 0.4 * o.max_shift_frac * 512);  // it does move
  EXPECT_LE(max_rot, o.max_rot_deg + 1e-9);
  EXPECT_GT(max_rot, 0.4 * o.max_rot_deg);
  EXPECT_LE(max_ds, o.max_scale + 1e-9);
  EXPECT_GT(diff_c, 1.0);

  const HeadTransform h = a.at(1.3);
  const cv::Matx23d m = a.matrix(h);
  const cv::Vec3d centre(250, 200, 1);
  const cv::Vec2d moved = m * centre;
  EXPECT_NEAR(moved[0], 250 + h.tx, 1e-9);
  EXPECT_NEAR(moved[1], 200 + h.ty, 1e-9);
}

TEST(Portrait, CropsAroundTheFaceAndFindsLandmarks) {
  REQUIRE_SYNTH_PREREQUISITES();
  const Portrait& p = shared_portrait();
  ASSERT_EQ(p.rgb.size(), cv::Size(256, 256));
  EXPECT_EQ(p.rgb.type(), CV_8UC3);
  // The stock face is ~100 px of 512: the crop is a square of a few times that.
  EXPECT_EQ(p.crop.width, p.crop.height);
  EXPECT_GT(p.crop.width, 150);
  EXPECT_LT(p.crop.width, 400);
  // The face fills a good part of the output and sits near its centre.
  const cv::Rect2f fb = face::face_box(p.lm);
  EXPECT_GT(fb.height, 0.3f * 256);
  EXPECT_NEAR(fb.x + fb.width / 2, 128, 30);
  EXPECT_NEAR(fb.y + fb.height / 2, 128, 30);
}

TEST(Portrait, MissingOrBadPathIsAnErrorNamingIt) {
  testing::TempDir tmp;
  const auto missing = tmp.path() / "no_such_portrait.png";
  try {
    load_portrait(missing, 256, 2.2, shared_analyzer());
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("install-deps"), std::string::npos) << e.what();
  }
  const auto text = tmp.path() / "text.png";
  std::ofstream(text) << "not an image";
  EXPECT_THROW(load_portrait(text, 256, 2.2, shared_analyzer()), Error);
}

TEST(MouthRig, ClosedIsIdentityAndUpperFaceNeverMoves) {
  REQUIRE_SYNTH_PREREQUISITES();
  const Portrait& p = shared_portrait();
  const MouthRig rig(p.lm, p.rgb.size());
  const cv::Mat closed = rig.render(p.rgb, 0.0f);
  EXPECT_EQ(cv::norm(closed, p.rgb, cv::NORM_INF), 0.0);

  const cv::Mat open = rig.render(p.rgb, 1.0f);
  // Everything above the nose tip is bit-identical.
  const int nose = static_cast<int>(p.lm[33].y);
  EXPECT_EQ(cv::norm(open.rowRange(0, nose), p.rgb.rowRange(0, nose), cv::NORM_INF), 0.0);
  // Weights: 0 on the upper lip and above, ~1 on the chin, 0 far away.
  EXPECT_EQ(rig.weight(p.lm[51].x, p.lm[51].y - 3), 0.0f);
  EXPECT_GT(rig.weight(p.lm[8].x, p.lm[8].y), 0.95f);
  EXPECT_GT(rig.weight(p.lm[57].x, p.lm[57].y), 0.9f);
  EXPECT_EQ(rig.weight(5, 250), 0.0f);
  EXPECT_EQ(rig.weight(p.lm[0].x - 5, p.lm[8].y), 0.0f);
  // The chin really moved: the rows below the mouth differ.
  EXPECT_GT(cv::norm(open.rowRange(nose, 256), p.rgb.rowRange(nose, 256), cv::NORM_L1), 1000.0);
}

double mean_luma(const cv::Mat& rgb, cv::Rect r) {
  cv::Mat g;
  cv::cvtColor(rgb(r & cv::Rect(0, 0, rgb.cols, rgb.rows)), g, cv::COLOR_RGB2GRAY);
  return cv::mean(g)[0];
}

TEST(MouthRig, OpenMouthIsDarkAndTheDetectorSeesItOpen) {
  REQUIRE_SYNTH_PREREQUISITES();
  const Portrait& p = shared_portrait();
  const MouthRig rig(p.lm, p.rgb.size());
  const float drop = rig.drop_px(1.0f);
  EXPECT_NEAR(drop, 0.2f * cv::norm(p.lm[8] - p.lm[27]), 1e-3);
  EXPECT_GT(drop, 8.0f);  // visible at 256 px

  // A box in the middle of the opened gap turns dark.
  const cv::Point2f lip_mid = (p.lm[62] + p.lm[66]) * 0.5f;
  const cv::Rect gap(static_cast<int>(lip_mid.x) - 3, static_cast<int>(lip_mid.y + 0.3f * drop), 7,
                     std::max(2, static_cast<int>(0.4f * drop)));
  const cv::Mat open = rig.render(p.rgb, 1.0f);
  EXPECT_LT(mean_luma(open, gap), 0.5 * mean_luma(p.rgb, gap));
  EXPECT_LT(mean_luma(open, gap), 60.0);

  // dlib on the rendered stills: opening grows with the rig's opening.
  auto measured = [&](float o) {
    const auto faces = shared_analyzer().analyze(rig.render(p.rgb, o));
    EXPECT_EQ(faces.size(), 1u);
    return faces.empty() ? -1.0f : face::mouth_opening(faces[0].lm);
  };
  const float m0 = measured(0.0f), m5 = measured(0.5f), m1 = measured(1.0f);
  RecordProperty("dlib_opening_x1000_at_0_half_1",
                 fmt::format("{} {} {}", int(m0 * 1000), int(m5 * 1000), int(m1 * 1000)));
  EXPECT_LT(m0, m5);
  EXPECT_LT(m5, m1);
  EXPECT_GT(m1 - m0, 0.08f) << m0 << " " << m5 << " " << m1;
}

TEST(MouthRig, RejectsWrongImages) {
  REQUIRE_SYNTH_PREREQUISITES();
  const Portrait& p = shared_portrait();
  const MouthRig rig(p.lm, p.rgb.size());
  EXPECT_THROW(rig.render(cv::Mat(100, 100, CV_8UC3, cv::Scalar(0)), 0.5f), Error);
  EXPECT_THROW(rig.render(cv::Mat(256, 256, CV_8UC1, cv::Scalar(0)), 0.5f), Error);
}

}  // namespace
}  // namespace hallo::synth
