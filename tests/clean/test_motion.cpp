// MotionAnalyzer on frames drawn with OpenCV: a textured set, a moving "face",
// camera pans and a cut between two differently coloured scenes.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <random>

#include "core/error.h"
#include "data/clean/clean.h"
#include "tests/clean/synthetic.h"

namespace hc = hallo::clean;

namespace {

// A large RGB backdrop full of corners: random rectangles and discs in colours
// drawn from `palette`, on a base of the first palette colour.
cv::Mat textured_set(cv::Size size, const std::vector<cv::Scalar>& palette, unsigned seed) {
  cv::Mat set(size, CV_8UC3, palette[0]);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> x(0, size.width - 1), y(0, size.height - 1), r(4, 24);
  std::uniform_int_distribution<size_t> c(1, palette.size() - 1);
  std::uniform_real_distribution<double> shade(0.6, 1.0);
  for (int i = 0; i < 900; ++i) {
    const cv::Scalar col = palette[c(rng)] * shade(rng);
    const cv::Point p(x(rng), y(rng));
    if (i % 2) {
      cv::rectangle(set, cv::Rect(p, cv::Size(r(rng), r(rng))), col, cv::FILLED);
    } else {
      cv::circle(set, p, r(rng) / 2, col, cv::FILLED, cv::LINE_AA);
    }
  }
  return set;
}

const std::vector<cv::Scalar> kCoolPalette{{40, 70, 110}, {20, 90, 200}, {30, 160, 120}, {90, 200, 230}, {10, 40, 60}};
const std::vector<cv::Scalar> kWarmPalette{{120, 60, 30}, {230, 60, 40}, {250, 200, 40}, {160, 40, 90}, {240, 140, 60}};

// A cartoon speaker centred at `c`: a checked shirt down to the frame's bottom
// (full of corners, like real clothing) under a face with eyes and a mouth.
// Returns the face box.
cv::Rect2f draw_face(cv::Mat& img, cv::Point2f c, float scale) {
  const cv::Size axes(cvRound(40 * scale), cvRound(52 * scale));
  const int cell = std::max(3, cvRound(8 * scale));
  const int x0 = cvRound(c.x - 2.2f * axes.width), x1 = cvRound(c.x + 2.2f * axes.width);
  for (int y = cvRound(c.y + 0.8f * axes.height), row = 0; y < img.rows; y += cell, ++row) {
    for (int x = x0, col = 0; x < x1; x += cell, ++col) {
      const cv::Scalar shirt = (row + col) % 2 ? cv::Scalar(240, 240, 235) : cv::Scalar(60, 30, 110);
      cv::rectangle(img, cv::Rect(x, y, cell, cell), shirt, cv::FILLED);
    }
  }
  cv::ellipse(img, c, axes, 0, 0, 360, cv::Scalar(225, 180, 150), cv::FILLED, cv::LINE_AA);
  for (float side : {-1.f, 1.f}) {
    cv::circle(img, c + cv::Point2f(side * 15 * scale, -12 * scale), cvRound(5 * scale), cv::Scalar(40, 30, 30),
               cv::FILLED);
  }
  cv::ellipse(img, c + cv::Point2f(0, 22 * scale), cv::Size(cvRound(14 * scale), cvRound(6 * scale)), 0, 0, 360,
              cv::Scalar(150, 40, 50), cv::FILLED);
  return {c.x - axes.width, c.y - axes.height, 2.f * axes.width, 2.f * axes.height};
}

// Frame t of a shot: the set seen through a window that pans by `pan` px per
// frame, with a face at `face0` moving by `face_v` px per frame (frame coords).
cv::Mat shot_frame(const cv::Mat& set, cv::Size frame, cv::Point pan, int t, cv::Point2f face0,
                   cv::Point2f face_v, cv::Rect2f* box) {
  const cv::Rect window(200 + pan.x * t, 200 + pan.y * t, frame.width, frame.height);
  cv::Mat img = set(window).clone();
  *box = draw_face(img, face0 + face_v * float(t), frame.width / 512.f * 1.5f);
  return img;
}

float median_from(const std::vector<float>& v, size_t first) {
  std::vector<float> tail(v.begin() + first, v.end());
  std::nth_element(tail.begin(), tail.begin() + tail.size() / 2, tail.end());
  return tail[tail.size() / 2];
}

}  // namespace

TEST(CleanMotion, StaticSetWithMovingFaceHasNoCameraMotion) {
  const cv::Mat set = textured_set({900, 700}, kCoolPalette, 1);
  hc::MotionAnalyzer ma({}), blind({});
  for (int t = 0; t < 30; ++t) {
    cv::Rect2f box;
    // The face walks 6 px/frame to the right and bobs; the camera is still.
    const cv::Mat f = shot_frame(set, {512, 288}, {0, 0}, t, {150, 140}, {6, (t % 4) - 1.5f}, &box);
    ma.push(f, box);
    blind.push(f, {});
  }
  const auto& s = ma.stats();
  // Without the face box the speaker's own motion would read as a pan: the
  // scene is hard enough that the mask matters.
  EXPECT_GT(median_from(blind.stats().camera_motion, 1), 1.5f);
  ASSERT_EQ(s.camera_motion.size(), 30u);
  ASSERT_EQ(s.scene_dist.size(), 30u);
  EXPECT_EQ(s.camera_motion[0], 0.f);
  EXPECT_EQ(s.scene_dist[0], 0.f);
  for (int t = 1; t < 30; ++t) {
    EXPECT_LT(s.camera_motion[t], 0.25f) << "frame " << t;
    EXPECT_LT(s.scene_dist[t], 0.2f) << "frame " << t;
  }
}

struct Pan {
  cv::Size frame;
  cv::Point px_per_frame;  // in frame pixels
  double expected;         // px/frame at 256 px width
  bool rejected;           // with the default max_camera_motion = 2
  const char* name;
};

class CleanPan : public ::testing::TestWithParam<Pan> {};

TEST_P(CleanPan, MeasuredAndJudged) {
  const Pan p = GetParam();
  const cv::Mat set = textured_set({900, 700}, kCoolPalette, 2);
  hc::CleanConfig cfg;
  cfg.min_segment_s = 1.0;
  hc::MotionAnalyzer ma(cfg);
  hallo::clean::test::Video v(30);
  for (int t = 0; t < 30; ++t) {
    cv::Rect2f box;
    // The camera follows the speaker: the face stays put, the set slides by.
    const cv::Point2f centre(p.frame.width * 0.5f, p.frame.height * 0.45f);
    const cv::Mat f = shot_frame(set, p.frame, p.px_per_frame, t, centre, {0, 0}, &box);
    ma.push(f, box);
    v.frames[t].face_box = box;
  }
  const float m = median_from(ma.stats().camera_motion, 1);
  EXPECT_NEAR(m, p.expected, 0.15) << "median camera motion";
  v.motion = ma.stats();
  const auto r = v.clean(cfg);
  if (p.rejected) {
    EXPECT_TRUE(r.kept.empty());
    ASSERT_EQ(r.rejected.size(), 1u) << hc::result_to_json(r).dump();
    EXPECT_EQ(r.rejected[0].reason, "camera motion");
    EXPECT_EQ(r.rejected[0].begin, 0);
    EXPECT_EQ(r.rejected[0].end, 30);
  } else {
    ASSERT_EQ(r.kept.size(), 1u) << hc::result_to_json(r).dump();
    EXPECT_EQ(r.kept[0].end, 30);
    EXPECT_NEAR(r.kept[0].scores.at("camera_motion").get<double>(), p.expected, 0.15);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Pans, CleanPan,
    ::testing::Values(Pan{{512, 288}, {2, 0}, 1.0, false, "Slow512"},     // 2 px at 512 = 1 px at 256
                      Pan{{512, 288}, {-3, 4}, 2.5, true, "Diagonal512"},  // 5 px at 512
                      Pan{{256, 144}, {0, -3}, 3.0, true, "Tilt256"},      // native analysis width
                      Pan{{160, 120}, {1, 0}, 1.6, false, "Narrow160"}),   // narrower than 256: scaled up
    [](const ::testing::TestParamInfo<Pan>& info) { return std::string(info.param.name); });

TEST(CleanMotion, SceneCutBetweenTwoSets) {
  const cv::Mat cool = textured_set({900, 700}, kCoolPalette, 3);
  const cv::Mat warm = textured_set({900, 700}, kWarmPalette, 4);
  hc::CleanConfig cfg;
  cfg.min_segment_s = 1.0;
  hc::MotionAnalyzer ma(cfg);
  hallo::clean::test::Video v(60);
  for (int t = 0; t < 60; ++t) {
    cv::Rect2f box;
    const bool second = t >= 30;
    const cv::Mat f = shot_frame(second ? warm : cool, {512, 288}, {0, 0}, second ? t - 30 : t,
                                 {second ? 330.f : 200.f, 140}, {1, 0}, &box);
    ma.push(f, box);
    v.frames[t].face_box = box;
  }
  const auto& s = ma.stats();
  for (int t = 1; t < 60; ++t) {
    if (t == 30) {
      EXPECT_GT(s.scene_dist[t], 0.5f);
    } else {
      EXPECT_LT(s.scene_dist[t], 0.2f) << "frame " << t;
    }
  }
  v.motion = s;
  const auto r = v.clean(cfg);
  ASSERT_EQ(r.kept.size(), 2u) << hc::result_to_json(r).dump();
  EXPECT_EQ(r.kept[0].begin, 0);
  EXPECT_EQ(r.kept[0].end, 30);
  EXPECT_EQ(r.kept[1].begin, 30);
  EXPECT_EQ(r.kept[1].end, 60);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].reason, "scene cut");
  EXPECT_EQ(r.rejected[0].begin, 30);
  EXPECT_EQ(r.rejected[0].end, 30);
}

TEST(CleanMotion, RejectsBadFrames) {
  hc::MotionAnalyzer ma({});
  EXPECT_THROW(ma.push(cv::Mat(), {}), hallo::Error);
  EXPECT_THROW(ma.push(cv::Mat(64, 64, CV_8UC1, cv::Scalar(0)), {}), hallo::Error);
  ma.push(cv::Mat(64, 64, CV_8UC3, cv::Scalar(10, 20, 30)), {});
  EXPECT_THROW(ma.push(cv::Mat(32, 64, CV_8UC3, cv::Scalar(0)), {}), hallo::Error);
  // A garbage face box (NaN / huge) is treated as no face, not a crash.
  const float nan = std::nanf("");
  ma.push(cv::Mat(64, 64, CV_8UC3, cv::Scalar(10, 20, 30)), cv::Rect2f(nan, 0, 1e30f, 5));
  ASSERT_EQ(ma.stats().camera_motion.size(), 2u);
  // A flat frame has no features to track: motion reads 0, not noise.
  EXPECT_EQ(ma.stats().camera_motion[1], 0.f);
  EXPECT_EQ(ma.stats().scene_dist[1], 0.f);
}
