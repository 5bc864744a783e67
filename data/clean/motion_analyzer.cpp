// Per-frame scene-change and camera-motion measurements, streamed frame by frame
// so `hallo prepare` never holds a whole video in memory.
#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/clean/clean.h"

namespace hallo::clean {
namespace {

constexpr int kMotionWidth = 256;     // camera motion is reported in px at this width
constexpr int kMaxCorners = 200;
constexpr int kMinTracks = 8;         // fewer background tracks -> motion unmeasurable (0)
constexpr float kMaxFbError = 1.0f;   // forward-backward LK disagreement, px

// H-S histogram of an RGB frame; hue carries the scene's colours, saturation
// separates grey walls from coloured sets. Value is left out so a lighting
// flicker is not a cut.
cv::Mat hs_hist(const cv::Mat& rgb) {
  cv::Mat hsv;
  cv::cvtColor(rgb, hsv, cv::COLOR_RGB2HSV);
  const int channels[] = {0, 1};
  const int bins[] = {30, 32};
  const float h_range[] = {0, 180}, s_range[] = {0, 256};
  const float* ranges[] = {h_range, s_range};
  cv::Mat hist;
  cv::calcHist(&hsv, 1, channels, cv::Mat(), hist, 2, bins, ranges);
  cv::normalize(hist, hist, 1, 0, cv::NORM_L1);
  return hist;
}

// Background = everything but the speaker: the face box grown by `margin` of
// its size per side, and below it the torso (shoulders span about three face
// widths) down to the bottom edge, since the body moves with the head.
cv::Mat background_mask(cv::Size size, const cv::Rect2f& a, const cv::Rect2f& b, double margin) {
  constexpr float kTorsoWidth = 3.0f;  // in face widths
  cv::Mat mask(size, CV_8U, cv::Scalar(255));
  const cv::Rect frame(cv::Point(0, 0), size);
  auto clear = [&](float x0, float y0, float x1, float y1) {
    const cv::Rect r = cv::Rect(cv::Point(static_cast<int>(std::floor(x0)), static_cast<int>(std::floor(y0))),
                                cv::Point(static_cast<int>(std::ceil(x1)), static_cast<int>(std::ceil(y1)))) &
                       frame;
    if (r.area() > 0) mask(r).setTo(0);
  };
  for (const cv::Rect2f& box : {a, b}) {
    if (!(box.width > 0 && box.height > 0)) continue;
    const auto m = static_cast<float>(margin);
    const float cx = box.x + 0.5f * box.width;
    clear(box.x - m * box.width, box.y - m * box.height, box.x + (1 + m) * box.width, box.y + (1 + m) * box.height);
    const float half_torso = 0.5f * std::max(kTorsoWidth, 1 + 2 * m) * box.width;
    clear(cx - half_torso, box.y + box.height, cx + half_torso, static_cast<float>(size.height));
  }
  return mask;
}

// Median translation of background features between two grey frames, px.
// Features that do not track back to where they started (occlusions, the
// speaker's hands) are dropped; the median ignores the rest of the outliers.
float background_motion(const cv::Mat& prev, const cv::Mat& cur, const cv::Mat& mask) {
  std::vector<cv::Point2f> p0;
  cv::goodFeaturesToTrack(prev, p0, kMaxCorners, 0.01, 5, mask, 3);
  if (static_cast<int>(p0.size()) < kMinTracks) return 0.f;
  std::vector<cv::Point2f> p1, back;
  std::vector<uchar> st1, st2;
  std::vector<float> err;
  const cv::Size win(21, 21);
  cv::calcOpticalFlowPyrLK(prev, cur, p0, p1, st1, err, win, 3);
  cv::calcOpticalFlowPyrLK(cur, prev, p1, back, st2, err, win, 3);
  std::vector<float> dx, dy;
  for (size_t i = 0; i < p0.size(); ++i) {
    if (!st1[i] || !st2[i]) continue;
    if (cv::norm(back[i] - p0[i]) > kMaxFbError) continue;
    dx.push_back(p1[i].x - p0[i].x);
    dy.push_back(p1[i].y - p0[i].y);
  }
  if (static_cast<int>(dx.size()) < kMinTracks) return 0.f;
  auto median = [](std::vector<float>& v) {
    auto mid = v.begin() + v.size() / 2;
    std::nth_element(v.begin(), mid, v.end());
    return *mid;
  };
  return std::hypot(median(dx), median(dy));
}

}  // namespace

MotionAnalyzer::MotionAnalyzer(const CleanConfig& cfg) : face_mask_margin_(cfg.face_mask_margin) {
  validate(cfg, "MotionAnalyzer");
}

void MotionAnalyzer::push(const cv::Mat& rgb, const cv::Rect2f& face_box) {
  const size_t index = stats_.scene_dist.size();
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    fail_at("MotionAnalyzer", "frame {}: expected a non-empty 8-bit RGB image, got type {} size {}x{}", index,
            rgb.type(), rgb.cols, rgb.rows);
  }
  if (index == 0) {
    first_size_ = rgb.size();
  } else if (rgb.size() != first_size_) {
    fail_at("MotionAnalyzer", "frame {}: size {}x{} differs from the first frame's {}x{}", index, rgb.cols,
            rgb.rows, first_size_.width, first_size_.height);
  }
  // Downscale large frames: motion is normalised to 256 px anyway and LK on
  // 256 px frames is cheap. Narrow frames are used as they are and scaled after.
  cv::Mat small = rgb;
  double to_work = 1.0;
  if (rgb.cols > kMotionWidth) {
    to_work = double(kMotionWidth) / rgb.cols;
    const int h = std::max(1, static_cast<int>(std::lround(rgb.rows * to_work)));
    cv::resize(rgb, small, cv::Size(kMotionWidth, h), 0, 0, cv::INTER_AREA);
  }
  const double to_norm = double(kMotionWidth) / small.cols;
  // A non-finite or absurd box (bad detector output) counts as no face.
  const bool box_ok = std::isfinite(face_box.x) && std::isfinite(face_box.y) && std::isfinite(face_box.width) &&
                      std::isfinite(face_box.height) && std::abs(face_box.x) < 1e6f && std::abs(face_box.y) < 1e6f &&
                      face_box.width < 1e6f && face_box.height < 1e6f;
  const auto s = static_cast<float>(to_work);
  const cv::Rect2f box = box_ok ? cv::Rect2f(face_box.x * s, face_box.y * s, face_box.width * s, face_box.height * s)
                                : cv::Rect2f();

  cv::Mat gray, hist = hs_hist(small);
  cv::cvtColor(small, gray, cv::COLOR_RGB2GRAY);
  float dist = 0, motion = 0;
  if (index > 0) {
    dist = static_cast<float>(cv::compareHist(prev_hist_, hist, cv::HISTCMP_BHATTACHARYYA));
    const cv::Mat mask = background_mask(gray.size(), prev_box_, box, face_mask_margin_);
    motion = static_cast<float>(background_motion(prev_gray_, gray, mask) * to_norm);
  }
  stats_.scene_dist.push_back(std::clamp(dist, 0.f, 1.f));
  stats_.camera_motion.push_back(motion);
  prev_gray_ = gray;
  prev_hist_ = hist;
  prev_box_ = box;
}

}  // namespace hallo::clean
