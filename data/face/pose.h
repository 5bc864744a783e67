#pragma once
// The generic 3D face behind estimate_pose(), exposed so tests (and tools that
// synthesise landmarks) can project it at a known pose.
#include <opencv2/core.hpp>

#include <array>

#include "data/face/landmarks.h"

namespace hallo::face {

// dlib indices of the model points: nose bridge, tip and base, eye corners.
const std::array<int, 9>& generic_face_model_ids();
// Model points in OpenCV camera axes (x right, y down, z away from the camera).
const std::array<cv::Point3f, 9>& generic_face_model();
// Pinhole intrinsics used by estimate_pose: f = image width, centre of the image.
cv::Matx33d pinhole_camera(cv::Size image);
// Rotation turning the optical axis (0,0,1) onto the ray towards t (shortest arc).
cv::Matx33d view_ray_rotation(const cv::Vec3d& t);
// yaw/pitch/roll (see HeadPose) of a model-to-camera rotation.
HeadPose pose_from_rotation(const cv::Matx33d& R);

}  // namespace hallo::face
