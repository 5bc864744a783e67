#include "eval/face_models.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/error.h"

namespace hallo::eval {

ExpressionModel::ExpressionModel(const std::filesystem::path& onnx, int size, int begin, int end)
    : path_(onnx.string()), size_(size), begin_(begin), end_(end) {
  if (!std::filesystem::is_regular_file(onnx)) fail_at(path_, "no such expression model");
  try {
    net_ = cv::dnn::readNetFromONNX(path_);
  } catch (const cv::Exception& e) {
    fail_at(path_, "not a loadable ONNX model: {}", e.what());
  }
  if (begin_ < 0 || (end_ >= 0 && end_ <= begin_)) fail_at(path_, "empty coefficient slice [{}, {})", begin_, end_);
}

std::string ExpressionModel::settings() const {
  return fmt::format("efid:crop1.25-facebox:area{}:rgb/255:slice{}:{}:dlib68", size_, begin_, end_);
}

at::Tensor ExpressionModel::coeffs(const std::vector<cv::Mat>& frames, const FaceTrack& t) {
  std::vector<at::Tensor> rows;
  rows.reserve(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const cv::Rect2f fb = face::face_box(t.landmarks[i]);
    const float side = 1.25f * std::max(fb.width, fb.height);
    const float cx = fb.x + fb.width / 2, cy = fb.y + fb.height / 2;
    const int s = std::max(1, static_cast<int>(std::lround(side)));
    const int x0 = static_cast<int>(std::lround(cx - side / 2)), y0 = static_cast<int>(std::lround(cy - side / 2));
    cv::Mat padded;
    cv::copyMakeBorder(frames[i], padded, s, s, s, s, cv::BORDER_REPLICATE);
    cv::Mat crop;
    cv::resize(padded(cv::Rect(x0 + s, y0 + s, s, s)), crop, cv::Size(size_, size_), 0, 0, cv::INTER_AREA);
    cv::Mat out;
    try {
      net_.setInput(cv::dnn::blobFromImage(crop, 1.0 / 255, cv::Size(), cv::Scalar(), /*swapRB=*/false, false));
      out = net_.forward().reshape(1, 1);
    } catch (const cv::Exception& e) {
      fail_at(path_, "running the expression model on a {}x{} RGB input failed: {}", size_, size_, e.what());
    }
    out.convertTo(out, CV_32F);
    const int end = end_ < 0 ? out.cols : end_;
    if (end > out.cols) fail_at(path_, "coefficient slice [{}, {}) is beyond the model's {} outputs", begin_, end_, out.cols);
    rows.push_back(at::from_blob(out.ptr<float>(), {out.cols}, at::kFloat).slice(0, begin_, end).clone());
  }
  return at::stack(rows);
}

double identity_similarity(face::FaceEmbedder& arcface, const std::vector<cv::Mat>& frames, const FaceTrack& t,
                           const cv::Mat& ref, const face::Landmarks68& ref_lm) {
  const std::vector<float> r = arcface.embed(ref, ref_lm);
  double sum = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const std::vector<float> g = arcface.embed(frames[i], t.landmarks[i]);
    double ab = 0, aa = 0, bb = 0;
    for (size_t k = 0; k < g.size(); ++k) ab += double(g[k]) * r[k], aa += double(g[k]) * g[k], bb += double(r[k]) * r[k];
    sum += ab / std::sqrt(aa * bb);
  }
  return sum / static_cast<double>(frames.size());
}

}  // namespace hallo::eval
