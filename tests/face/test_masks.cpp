// Hard and soft clip masks.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/face/masks.h"

namespace hallo::face {
namespace {

const cv::Rect2f kFace(150.4f, 120.6f, 210.0f, 250.2f);
const cv::Rect2f kLip(210.0f, 300.0f, 90.0f, 40.0f);

TEST(Masks, LevelSizesAndTypes) {
  const ClipMasks m = make_masks(kFace, kLip, cv::Size(512, 512));
  ASSERT_EQ(m.lip.size(), 4u);
  ASSERT_EQ(m.face.size(), 4u);
  ASSERT_EQ(m.pose.size(), 4u);
  for (int l = 0; l < 4; ++l) {
    const cv::Size want(64 >> l, 64 >> l);
    for (const cv::Mat* mat : {&m.lip[l], &m.face[l], &m.pose[l]}) {
      EXPECT_EQ(mat->size(), want) << "level " << l;
      EXPECT_EQ(mat->type(), CV_8UC1);
    }
  }
  EXPECT_EQ(m.face_region.size(), cv::Size(512, 512));
  EXPECT_EQ(m.face_region.type(), CV_8UC1);

  // Non-square frames keep their aspect ratio per level.
  MaskConfig cfg;
  cfg.levels = 3;
  const ClipMasks r = make_masks(kFace, kLip, cv::Size(640, 384), cfg);
  ASSERT_EQ(r.pose.size(), 3u);
  EXPECT_EQ(r.pose[0].size(), cv::Size(80, 48));
  EXPECT_EQ(r.pose[2].size(), cv::Size(20, 12));
}

TEST(Masks, HardFaceRegionIsTheExactRoundedBox) {
  const ClipMasks m = make_masks(kFace, kLip, cv::Size(512, 512));
  // columns [150, 360), rows [121, 371)
  const cv::Rect inner(150, 121, 210, 250);
  EXPECT_EQ(cv::countNonZero(m.face_region), inner.area());
  EXPECT_EQ(cv::countNonZero(m.face_region(inner) == 255), inner.area());
  EXPECT_EQ(m.face_region.at<uint8_t>(120, 200), 0);
  EXPECT_EQ(m.face_region.at<uint8_t>(371, 200), 0);
  EXPECT_EQ(m.face_region.at<uint8_t>(200, 149), 0);
  EXPECT_EQ(m.face_region.at<uint8_t>(200, 360), 0);
}

TEST(Masks, SoftMasksFollowTheUpstreamRecipe) {
  const ClipMasks m = make_masks(kFace, kLip, cv::Size(512, 512));
  for (size_t l = 0; l < m.pose.size(); ++l) {
    const cv::Mat& lip = m.lip[l];
    const cv::Mat& face = m.face[l];
    const cv::Mat& pose = m.pose[l];
    const float cell = 512.0f / lip.cols;  // full-res pixels per mask pixel
    // Lip peak on the lip box (at coarse levels the peak cell overlaps it).
    cv::Point peak;
    cv::minMaxLoc(lip, nullptr, nullptr, nullptr, &peak);
    cv::Rect2f peak_cell(peak.x * cell, peak.y * cell, cell, cell);
    EXPECT_GT((peak_cell & kLip).area(), 0.25f * std::min(peak_cell.area(), kLip.area()))
        << "level " << l << " peak " << peak_cell;
    // Face blur peaks inside the face box: pose is lowest there.
    cv::minMaxLoc(pose, nullptr, nullptr, &peak, nullptr);
    peak_cell = cv::Rect2f(peak.x * cell, peak.y * cell, cell, cell);
    EXPECT_GT((peak_cell & kFace).area(), 0.5f * peak_cell.area()) << "level " << l;
    // face = (255 - pose) - lip, saturating at 0 (1 of rounding slack).
    for (int y = 0; y < pose.rows; ++y)
      for (int x = 0; x < pose.cols; ++x) {
        const int blurred_face = 255 - pose.at<uint8_t>(y, x);
        const int want = std::max(0, blurred_face - lip.at<uint8_t>(y, x));
        ASSERT_NEAR(face.at<uint8_t>(y, x), want, 1) << "level " << l << " at " << x << "," << y;
      }
  }
  // Level 0 is min-max normalised: both extremes are reached.
  double lo = 0, hi = 0;
  cv::minMaxLoc(m.pose[0], &lo, &hi);
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 255);
  cv::minMaxLoc(m.lip[0], &lo, &hi);
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 255);
  // Far corner: no face, no lip, all pose.
  EXPECT_EQ(m.pose[0].at<uint8_t>(63, 0), 255);
  EXPECT_EQ(m.face[0].at<uint8_t>(63, 0), 0);
  EXPECT_EQ(m.lip[0].at<uint8_t>(63, 0), 0);
  // The lip region is carved out of the face mask.
  const cv::Point lip_c(static_cast<int>((kLip.x + kLip.width / 2) / 8), static_cast<int>((kLip.y + kLip.height / 2) / 8));
  const cv::Point cheek(static_cast<int>((kFace.x + 30) / 8), static_cast<int>((kFace.y + kFace.height / 2) / 8));
  EXPECT_LT(m.face[0].at<uint8_t>(lip_c), m.face[0].at<uint8_t>(cheek));
}

TEST(Masks, FaceMinusLipSaturates) {
  // A lip box hanging below a small face box: the lip blur beats the face blur there.
  const cv::Rect2f face(200, 100, 100, 100);
  const cv::Rect2f lip(180, 190, 140, 80);
  const ClipMasks m = make_masks(face, lip, cv::Size(512, 512));
  const cv::Mat& pose = m.pose[0];
  int saturated = 0;
  for (int y = 0; y < pose.rows; ++y)
    for (int x = 0; x < pose.cols; ++x) {
      const int blurred_face = 255 - pose.at<uint8_t>(y, x);
      if (m.lip[0].at<uint8_t>(y, x) > blurred_face + 2) {
        ++saturated;
        EXPECT_EQ(m.face[0].at<uint8_t>(y, x), 0) << x << "," << y;
      }
    }
  EXPECT_GT(saturated, 10);
}

TEST(Masks, KernelsScaleOddWithResolution) {
  EXPECT_EQ(scaled_kernel(51, 64, 64), 51);
  EXPECT_EQ(scaled_kernel(31, 64, 64), 31);
  EXPECT_EQ(scaled_kernel(51, 128, 64), 103);  // 102 -> next odd
  EXPECT_EQ(scaled_kernel(31, 32, 64), 17);    // 15.5 -> 16 -> 17
  EXPECT_EQ(scaled_kernel(51, 8, 64), 7);      // 6.4 -> 6 -> 7
  EXPECT_EQ(scaled_kernel(51, 1, 64), 1);
  for (int d = 1; d < 300; ++d) EXPECT_EQ(scaled_kernel(51, d, 64) % 2, 1) << d;
}

TEST(Masks, SameMasksAtTwiceTheResolution) {
  // 1024 px frames have 128 px level-0 masks and doubled kernels: after
  // shrinking to 64 px they must match the 512 px masks.
  const ClipMasks a = make_masks(kFace, kLip, cv::Size(512, 512));
  const cv::Rect2f f2(kFace.x * 2, kFace.y * 2, kFace.width * 2, kFace.height * 2);
  const cv::Rect2f l2(kLip.x * 2, kLip.y * 2, kLip.width * 2, kLip.height * 2);
  const ClipMasks b = make_masks(f2, l2, cv::Size(1024, 1024));
  ASSERT_EQ(b.pose[0].size(), cv::Size(128, 128));
  EXPECT_EQ(a.pose[0].size(), b.pose[1].size());
  for (int l = 0; l < 3; ++l) {
    EXPECT_LT(cv::norm(a.pose[l], b.pose[l + 1], cv::NORM_L1) / a.pose[l].total(), 1.5) << l;
    EXPECT_LT(cv::norm(a.lip[l], b.lip[l + 1], cv::NORM_L1) / a.lip[l].total(), 1.5) << l;
  }
}

TEST(Masks, BoxExpandScalesAboutTheCentreAndStaysInside) {
  const cv::Size size(512, 512);
  const cv::Rect2f e = expand_box(cv::Rect2f(100, 100, 100, 200), 1.5f, size);
  EXPECT_NEAR(e.x, 75, 1e-4);
  EXPECT_NEAR(e.y, 50, 1e-4);
  EXPECT_NEAR(e.width, 150, 1e-4);
  EXPECT_NEAR(e.height, 300, 1e-4);
  // At the border the box is shifted back in rather than cut.
  const cv::Rect2f c = expand_box(cv::Rect2f(0, 420, 100, 100), 1.2f, size);
  EXPECT_NEAR(c.x, 0, 1e-4);
  EXPECT_NEAR(c.width, 120, 1e-4);
  EXPECT_NEAR(c.y + c.height, 512, 1e-4);
  EXPECT_NEAR(c.height, 120, 1e-4);

  MaskConfig cfg;
  cfg.box_expand = 1.2f;
  const ClipMasks m = make_masks(cv::Rect2f(200, 200, 100, 100), kLip, size, cfg);
  EXPECT_EQ(cv::countNonZero(m.face_region), 120 * 120);
}

TEST(Masks, FullFrameFaceStaysFace) {
  const ClipMasks m = make_masks(cv::Rect2f(-10, -10, 600, 600), kLip, cv::Size(512, 512));
  EXPECT_EQ(cv::countNonZero(m.face_region), 512 * 512);
  EXPECT_EQ(cv::countNonZero(m.pose[0]), 0);  // no background anywhere
}

TEST(Masks, RejectsBadSizesAndConfigs) {
  EXPECT_THROW(make_masks(kFace, kLip, cv::Size(0, 512)), hallo::Error);
  EXPECT_THROW(make_masks(kFace, kLip, cv::Size(32, 32)), hallo::Error);  // 4 levels need 64 px
  MaskConfig cfg;
  cfg.levels = 0;
  EXPECT_THROW(make_masks(kFace, kLip, cv::Size(512, 512), cfg), hallo::Error);
  cfg = {};
  cfg.face_blur = 0;
  EXPECT_THROW(make_masks(kFace, kLip, cv::Size(512, 512), cfg), hallo::Error);
  try {
    make_masks(kFace, kLip, cv::Size(32, 32));
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("too small"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace hallo::face
