#pragma once
// Face detection + dlib 68-point landmarks, and the geometry Hallo's data
// preparation derives from them (face / lip boxes, head pose, mouth opening).
//
// Images are cv::Mat CV_8UC3 in RGB channel order (what media's video decoder
// produces); anything else is rejected with hallo::Error.
//
// dlib 68-point indices (iBUG 300-W): jaw 0-16, brows 17-26, nose 27-35,
// eyes 36-41 (image-left) / 42-47 (image-right), outer lip 48-59, inner lip 60-67.
#include <opencv2/core.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace hallo::face {

using Landmarks68 = std::array<cv::Point2f, 68>;

// One detected face in full-resolution pixel coordinates.
struct FaceObs {
  cv::Rect2f box;        // detector box, clipped to the image
  cv::Rect2f start_box;  // the unclipped box the landmark predictor started from
  float score = 0;     // detector confidence (dlib HOG margin or YuNet score)
  Landmarks68 lm{};  // whole-pixel positions (dlib's predictor rounds)
};

// Degrees. yaw > 0: face turned towards the image right; pitch > 0: looking up;
// roll > 0: head tilted clockwise as seen in the image.
struct HeadPose {
  float yaw = 0, pitch = 0, roll = 0;
};

struct FaceAnalyzerConfig {
  std::string shape_predictor = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
  std::string onnx_detector;  // optional: OpenCV YuNet ONNX (cv::FaceDetectorYN) instead of dlib HOG
  // Detection runs on a copy downscaled to this longest side (<= 0: full res)
  // for speed. dlib HOG needs faces of ~80 px there, so faces under ~1/4 of the
  // frame side are missed at 320; raise it or set upsample for small faces.
  int detect_max_side = 320;
  int upsample = 0;           // dlib pyramid upsampling (HOG only)
  // Videos (FaceTracker): run the detector every this many frames and follow
  // the face with the landmark predictor in between (1: detect every frame).
  int detect_every = 5;
  float yunet_score_threshold = 0.6f;
};

// One per thread: dlib detectors and cv::FaceDetectorYN are not thread-safe.
class FaceAnalyzer {
 public:
  // Throws hallo::Error naming the .dat (or .onnx) path if missing or corrupt.
  explicit FaceAnalyzer(FaceAnalyzerConfig cfg = {});
  ~FaceAnalyzer();
  FaceAnalyzer(FaceAnalyzer&&) noexcept;
  FaceAnalyzer& operator=(FaceAnalyzer&&) noexcept;

  // All faces, largest box first, with landmarks. `rgb` must be CV_8UC3 RGB.
  std::vector<FaceObs> analyze(const cv::Mat& rgb);
  // Landmarks in a given detector box (no detection; score 0): tracking a face
  // through frames where the detector misses or is not run (FaceTracker).
  FaceObs landmarks_in(const cv::Mat& rgb, const cv::Rect2f& box);

  const FaceAnalyzerConfig& config() const { return cfg_; }

 private:
  struct Impl;
  FaceAnalyzerConfig cfg_;
  std::unique_ptr<Impl> impl_;
};

// Head pose from solvePnP against a generic 3D face using only rigid points
// (nose 27/30/31/33/35, eye corners 36/39/42/45, so speech and smiles do not
// move it), pinhole camera with focal length = image width. The pose is
// relative to the line of sight to the face, so a face looking straight at
// the camera reads ~0 anywhere in the frame. Generic depths
// make it approximate (a few degrees): meant for filtering turned heads.
// Throws hallo::Error on an empty size or degenerate landmarks.
HeadPose estimate_pose(const Landmarks68& lm, cv::Size image);

// Silhouette box: bbox of jaw (0-16) + brows (17-26), extended upwards by
// forehead_ratio * box height because the brows sit well below the hairline.
cv::Rect2f face_box(const Landmarks68& lm, float forehead_ratio = 0.3f);
// Bbox of the lip points 48-67.
cv::Rect2f lip_box(const Landmarks68& lm);
// Mean inner-lip gap (pairs 61-67, 62-66, 63-65) divided by the nose-bridge to
// chin distance (27-8): ~0 closed, ~0.3-0.5 wide open; invariant to scale and roll.
float mouth_opening(const Landmarks68& lm);

// Smallest box containing all boxes (per-clip union); empty input -> empty box.
cv::Rect2f union_box(const std::vector<cv::Rect2f>& boxes);

// Throws hallo::Error("<where>: ...") unless `img` is a non-empty CV_8UC3 image.
void require_rgb(const cv::Mat& img, const std::string& where);

}  // namespace hallo::face
