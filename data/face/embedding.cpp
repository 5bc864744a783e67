// ArcFace alignment and embedding (see embedding.h).
#include "data/face/embedding.h"

#include <opencv2/calib3d.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"

namespace hallo::face {

namespace {

cv::Point2f mean_of(const Landmarks68& lm, int first, int last) {
  cv::Point2f s(0, 0);
  for (int i = first; i <= last; ++i) s += lm[i];
  return s / static_cast<float>(last - first + 1);
}

}  // namespace

std::array<cv::Point2f, 5> five_points(const Landmarks68& lm) {
  return {mean_of(lm, 36, 41), mean_of(lm, 42, 47), lm[30], lm[48], lm[54]};
}

std::array<cv::Point2f, 5> arcface_template(int size) {
  // insightface arcface_dst for 112 x 112 crops.
  static const std::array<cv::Point2f, 5> ref = {cv::Point2f(38.2946f, 51.6963f), cv::Point2f(73.5318f, 51.5014f),
                                                 cv::Point2f(56.0252f, 71.7366f), cv::Point2f(41.5493f, 92.3655f),
                                                 cv::Point2f(70.7299f, 92.2041f)};
  std::array<cv::Point2f, 5> out = ref;
  const float s = static_cast<float>(size) / 112.0f;
  for (auto& p : out) p *= s;
  return out;
}

cv::Mat arcface_transform(const std::array<cv::Point2f, 5>& pts, int size) {
  if (size <= 0) fail_at("align_arcface", "crop size must be positive, got {}", size);
  const auto dst = arcface_template(size);
  std::vector<cv::Point2f> from(pts.begin(), pts.end()), to(dst.begin(), dst.end());
  // Coincident or non-finite points have no similarity; RANSAC would return garbage or nothing.
  float spread = 0;
  for (const auto& p : pts) {
    if (!std::isfinite(p.x) || !std::isfinite(p.y)) fail_at("align_arcface", "non-finite face point");
    spread = std::max(spread, static_cast<float>(cv::norm(p - pts[0])));
  }
  if (spread < 1e-3f) fail_at("align_arcface", "degenerate face points (all at one spot)");
  // A threshold far above any landmark error keeps all 5 points as inliers, so
  // the Levenberg-Marquardt refinement yields the plain least-squares
  // similarity (what insightface's umeyama estimate computes).
  cv::Mat M = cv::estimateAffinePartial2D(from, to, cv::noArray(), cv::RANSAC, 1e6, 2000, 0.99, 50);
  if (M.empty() || !cv::checkRange(M)) fail_at("align_arcface", "degenerate face points, no similarity transform");
  return M;
}

cv::Mat align_arcface(const cv::Mat& rgb, const std::array<cv::Point2f, 5>& pts, int size) {
  require_rgb(rgb, "align_arcface");
  const cv::Mat M = arcface_transform(pts, size);
  cv::Mat out;
  cv::warpAffine(rgb, out, M, cv::Size(size, size), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

FaceEmbedder::FaceEmbedder(const std::string& onnx_path, int input_size)
    : path_(onnx_path), input_size_(input_size) {
  std::error_code ec;
  if (onnx_path.empty()) fail("FaceEmbedder: ArcFace ONNX path is empty");
  if (!std::filesystem::is_regular_file(onnx_path, ec)) fail_at(onnx_path, "ArcFace ONNX model not found");
  if (input_size <= 0) fail_at(onnx_path, "input size must be positive, got {}", input_size);
  try {
    net_ = cv::dnn::readNetFromONNX(onnx_path);
  } catch (const cv::Exception& e) {
    fail_at(onnx_path, "cannot load ArcFace ONNX model ({})", e.what());
  }
  if (net_.empty()) fail_at(onnx_path, "cannot load ArcFace ONNX model (empty network)");
  net_.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
  net_.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
}

std::vector<float> FaceEmbedder::embed(const cv::Mat& rgb, const Landmarks68& lm) {
  return embed_aligned(align_arcface(rgb, five_points(lm), input_size_));
}

std::vector<float> FaceEmbedder::embed_aligned(const cv::Mat& aligned_rgb) {
  require_rgb(aligned_rgb, path_);
  if (aligned_rgb.cols != input_size_ || aligned_rgb.rows != input_size_)
    fail_at(path_, "aligned crop is {}x{}, the model expects {}x{}", aligned_rgb.cols, aligned_rgb.rows,
            input_size_, input_size_);
  // [1, 3, S, S] CV_32F; already RGB so no channel swap.
  const cv::Mat blob = cv::dnn::blobFromImage(aligned_rgb, 1.0 / 127.5, cv::Size(), cv::Scalar::all(127.5), false, false);
  cv::Mat out;
  try {
    net_.setInput(blob);
    out = net_.forward();
  } catch (const cv::Exception& e) {
    fail_at(path_, "ArcFace inference failed ({})", e.what());
  }
  if (out.depth() != CV_32F || out.total() == 0) fail_at(path_, "ArcFace output is empty or not float");
  const float* p = out.ptr<float>();
  return std::vector<float>(p, p + out.total());
}

}  // namespace hallo::face
