// Head pose from 9 rigid landmarks and a generic face (solvePnP). Used to drop
// profile / strongly turned clips, so a few degrees of bias are acceptable.
#include <opencv2/calib3d.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "data/face/pose.h"

namespace hallo::face {

const std::array<int, 9>& generic_face_model_ids() {
  static const std::array<int, 9> ids = {27, 30, 31, 33, 35, 36, 39, 42, 45};
  return ids;
}

// Only rigid points (nose and eye corners): mouth and chin move with speech and
// expression (a smile alone reads as ~15 degrees of pitch if they are used).
// Arbitrary units (outer eye-corner span 450, ~0.2 mm) in OpenCV camera axes:
// x to the image right, y down, z away from the camera, nose tip at the origin.
// x / y are the frontal mean shape of dlib's 68-point predictor, so a frontal
// dlib face reads ~0 degrees; depths are average anthropometric offsets
// behind the nose tip.
const std::array<cv::Point3f, 9>& generic_face_model() {
  static const std::array<cv::Point3f, 9> pts = {
      cv::Point3f(0.0f, -190.0f, 100.0f),     // 27 nasal bridge (sellion)
      cv::Point3f(0.0f, 0.0f, 0.0f),          // 30 nose tip
      cv::Point3f(-75.0f, 43.5f, 120.0f),     // 31 image-left nostril wing
      cv::Point3f(0.0f, 68.0f, 85.0f),        // 33 subnasale
      cv::Point3f(75.0f, 43.5f, 120.0f),      // 35 image-right nostril wing
      cv::Point3f(-225.0f, -182.0f, 215.0f),  // 36 outer corner, image-left eye
      cv::Point3f(-95.0f, -172.5f, 150.0f),   // 39 inner corner, image-left eye
      cv::Point3f(95.0f, -172.5f, 150.0f),    // 42 inner corner, image-right eye
      cv::Point3f(225.0f, -182.0f, 215.0f),   // 45 outer corner, image-right eye
  };
  return pts;
}

cv::Matx33d pinhole_camera(cv::Size image) {
  const double f = image.width;
  return {f, 0, image.width / 2.0, 0, f, image.height / 2.0, 0, 0, 1};
}

HeadPose pose_from_rotation(const cv::Matx33d& R) {
  constexpr double kDeg = 180.0 / M_PI;
  // Facing direction = model's -z axis after rotation (towards the camera when frontal).
  const cv::Vec3d n(-R(0, 2), -R(1, 2), -R(2, 2));
  // Model's +x axis (image-left eye -> image-right eye) after rotation.
  const cv::Vec3d ax(R(0, 0), R(1, 0), R(2, 0));
  HeadPose p;
  p.yaw = static_cast<float>(std::atan2(n[0], -n[2]) * kDeg);
  p.pitch = static_cast<float>(std::atan2(-n[1], std::hypot(n[0], n[2])) * kDeg);
  p.roll = static_cast<float>(std::atan2(ax[1], ax[0]) * kDeg);
  return p;
}

cv::Matx33d view_ray_rotation(const cv::Vec3d& t) {
  const double n = cv::norm(t);
  if (n <= 0) return cv::Matx33d::eye();
  const cv::Vec3d z(0, 0, 1), d = t / n;
  const cv::Vec3d axis = z.cross(d);
  const double s = cv::norm(axis);
  if (s < 1e-12) return cv::Matx33d::eye();
  const cv::Vec3d rvec = axis * (std::atan2(s, z.dot(d)) / s);
  cv::Matx33d R;
  cv::Rodrigues(rvec, R);
  return R;
}

HeadPose estimate_pose(const Landmarks68& lm, cv::Size image) {
  const auto& ids = generic_face_model_ids();
  const auto& model = generic_face_model();
  std::vector<cv::Point3f> obj(model.begin(), model.end());
  std::vector<cv::Point2f> img;
  for (int id : ids) img.push_back(lm[id]);

  if (image.width <= 0 || image.height <= 0)
    fail_at("estimate_pose", "image size {}x{} is empty", image.width, image.height);
  if (cv::norm(lm[45] - lm[36]) < 1.0 || !cv::checkRange(cv::Mat(img).reshape(1)))
    fail_at("estimate_pose", "degenerate landmarks (eye corners coincide or non-finite)");
  const cv::Matx33d K = pinhole_camera(image);
  // Start from a frontal face at the distance implied by the eye-corner span:
  // a cold start from few, nearly planar points can converge to the mirrored
  // solution behind the camera.
  const double eye_span = cv::norm(lm[45] - lm[36]);
  const double tz = K(0, 0) * 450.0 / eye_span;
  cv::Mat rvec = cv::Mat::zeros(3, 1, CV_64F);
  cv::Mat tvec = (cv::Mat_<double>(3, 1) << (lm[30].x - K(0, 2)) * tz / K(0, 0),
                  (lm[30].y - K(1, 2)) * tz / K(1, 1), tz);
  bool ok = false;
  try {
    ok = cv::solvePnP(obj, img, K, cv::noArray(), rvec, tvec, true, cv::SOLVEPNP_ITERATIVE);
  } catch (const cv::Exception& e) {
    fail_at("estimate_pose", "solvePnP failed ({})", e.what());
  }
  if (!ok) fail_at("estimate_pose", "solvePnP found no pose");
  cv::Matx33d R;
  cv::Rodrigues(rvec, R);
  return pose_from_rotation(view_ray_rotation(cv::Vec3d(tvec)).t() * R);
}

}  // namespace hallo::face
