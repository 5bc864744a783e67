// FaceTracker against per-frame detection on a moving astronaut: same faces on
// the same frames (appearing, disappearing, a cut), landmarks within a pixel
// or two, and far fewer detector runs.
#include <gtest/gtest.h>

#include <cmath>

#include "data/face/face_tracker.h"
#include "tests/face/face_test_util.h"

namespace hallo::face {
namespace {

using testing::load_astronaut;
using testing::shared_analyzer;

// 50 frames of 384^2: the window drifts and zooms smoothly over the portrait,
// frames 13-19 are blank (the face leaves), frame 33 cuts to another framing.
std::vector<cv::Mat> moving_sequence(const cv::Mat& portrait) {
  std::vector<cv::Mat> out;
  for (int i = 0; i < 50; ++i) {
    if (i >= 13 && i < 20) {
      out.emplace_back(384, 384, CV_8UC3, cv::Scalar(90, 90, 90));
      continue;
    }
    const double t = i / 50.0;
    const int side = static_cast<int>(std::lround(384 + 24 * t));
    int x = static_cast<int>(std::lround(50 + 10 * std::sin(i / 6.0))), y = static_cast<int>(std::lround(25 + 10 * t));
    if (i >= 33) x -= 40, y -= 25;
    cv::Mat f;
    cv::resize(portrait(cv::Rect(x, y, side, side)), f, cv::Size(384, 384), 0, 0, cv::INTER_AREA);
    out.push_back(f);
  }
  return out;
}

double mean_distance(const Landmarks68& a, const Landmarks68& b) {
  double s = 0;
  for (size_t k = 0; k < a.size(); ++k) s += cv::norm(a[k] - b[k]);
  return s / a.size();
}

std::vector<TrackedFrame> run(FaceTracker& tr, const std::vector<cv::Mat>& frames) {
  std::vector<TrackedFrame> all;
  for (const auto& f : frames)
    for (auto& t : tr.push(f)) all.push_back(std::move(t));
  for (auto& t : tr.finish()) all.push_back(std::move(t));
  return all;
}

class FaceTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_shape_predictor()) GTEST_SKIP() << "dlib shape predictor not installed";
    portrait_ = load_astronaut();
    if (portrait_.empty()) GTEST_SKIP() << "astronaut asset missing";
    frames_ = moving_sequence(portrait_);
    for (const auto& f : frames_) per_frame_.push_back(shared_analyzer().analyze(f));
  }
  cv::Mat portrait_;
  std::vector<cv::Mat> frames_;
  std::vector<std::vector<FaceObs>> per_frame_;
};

TEST_F(FaceTrackerTest, SameFacesOnTheSameFramesAsPerFrameDetection) {
  FaceTracker tr(shared_analyzer(), 5);
  const auto got = run(tr, frames_);
  ASSERT_EQ(got.size(), frames_.size());
  double worst = 0, sum = 0;
  int tracked = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index, static_cast<int>(i));
    EXPECT_EQ(got[i].num_faces, static_cast<int>(per_frame_[i].size())) << "frame " << i;
    EXPECT_EQ(cv::norm(got[i].rgb, frames_[i], cv::NORM_INF), 0.0) << "frame " << i << " came back altered";
    if (got[i].num_faces == 0 || per_frame_[i].empty()) continue;
    const double d = mean_distance(got[i].face.lm, per_frame_[i][0].lm);
    if (got[i].detected) {
      EXPECT_EQ(d, 0.0) << "a detected frame must give the detector's landmarks, frame " << i;
    } else {
      ++tracked;
      sum += d;
      worst = std::max(worst, d);
    }
  }
  // The astronaut's face box is ~90 px wide here.
  ASSERT_GT(tracked, 20);
  EXPECT_LT(sum / tracked, 1.0) << "mean landmark distance to per-frame detection (measured 0.31 px)";
  EXPECT_LT(worst, 2.0) << "measured 0.58 px";
  // Frames 11-14 (the blank starts at 13), 26-29 (a false second face from frame
  // 28 on) and 31-34 (the cut at 33) were tracked, then detected again when the
  // next detection disagreed.
  EXPECT_GE(tr.redetected(), 8);
  EXPECT_LT(tr.detections(), 32) << "tracking should skip most detector runs (50 frames)";
  for (int i : {13, 19, 33}) EXPECT_TRUE(got[i].detected) << "frame " << i << " changes the scene: must be detected";
}

// The sequence ends two frames into the blank: no regular detection follows, so
// finish() must detect the last frame, see the face gone and detect the held-back
// frames again.
TEST_F(FaceTrackerTest, FinishChecksTheFramesAfterTheLastDetection) {
  const std::vector<cv::Mat> head(frames_.begin(), frames_.begin() + 15);  // detections at 0, 5, 10; blank 13-14
  FaceTracker tr(shared_analyzer(), 5);
  const auto got = run(tr, head);
  ASSERT_EQ(got.size(), head.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].index, static_cast<int>(i));
    EXPECT_EQ(got[i].num_faces, static_cast<int>(per_frame_[i].size())) << "frame " << i;
  }
  EXPECT_EQ(got[14].num_faces, 0);
  EXPECT_TRUE(got[14].detected);
  EXPECT_EQ(tr.redetected(), 3) << "frames 11-13 detected again";
  EXPECT_EQ(tr.detections(), 3 + 1 + 3);
}

TEST_F(FaceTrackerTest, DetectEveryOneIsPerFrameDetection) {
  FaceTracker tr(shared_analyzer(), 1);
  std::vector<TrackedFrame> got;
  for (const auto& f : frames_) {
    auto out = tr.push(f);
    ASSERT_EQ(out.size(), 1u) << "nothing is held back when every frame is detected";
    got.push_back(std::move(out[0]));
  }
  EXPECT_TRUE(tr.finish().empty());
  EXPECT_EQ(tr.detections(), 50);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].num_faces, static_cast<int>(per_frame_[i].size()));
    if (got[i].num_faces) {
      EXPECT_EQ(mean_distance(got[i].face.lm, per_frame_[i][0].lm), 0.0);
    }
  }
}

TEST_F(FaceTrackerTest, HoldsBackAtMostDetectEveryMinusOneFrames) {
  FaceTracker tr(shared_analyzer(), 4);
  size_t out = 0;
  for (size_t i = 0; i < frames_.size(); ++i) {
    out += tr.push(frames_[i]).size();
    EXPECT_LE(i + 1 - out, 3u) << "frame " << i;
  }
  out += tr.finish().size();
  EXPECT_EQ(out, frames_.size());
}

}  // namespace
}  // namespace hallo::face
