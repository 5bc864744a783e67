#pragma once
// ArcFace identity embedding (Hallo's image-projection input): the face is
// aligned to the standard 5-point 112x112 template with a least-squares
// similarity transform and run through an ArcFace ONNX (insightface
// glintr100 / w600k_r50) with OpenCV dnn. The output is the raw embedding,
// NOT L2-normalised, like insightface's `face.embedding` that upstream stores.
//
// Images are cv::Mat CV_8UC3 in RGB order; the network input is RGB too.
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <array>
#include <string>
#include <vector>

#include "data/face/landmarks.h"

namespace hallo::face {

// image-left eye centre (mean of 36-41), image-right eye centre (42-47), nose
// tip (30), image-left mouth corner (48), image-right mouth corner (54): the
// order of the ArcFace template.
std::array<cv::Point2f, 5> five_points(const Landmarks68& lm);

// The ArcFace template scaled to a size x size crop.
std::array<cv::Point2f, 5> arcface_template(int size = 112);

// 2x3 CV_64F similarity transform (rotation, uniform scale, shift) mapping `pts`
// onto the template by least squares. Throws hallo::Error on degenerate points.
cv::Mat arcface_transform(const std::array<cv::Point2f, 5>& pts, int size = 112);

// size x size CV_8UC3 RGB crop (black outside the frame).
cv::Mat align_arcface(const cv::Mat& rgb, const std::array<cv::Point2f, 5>& pts, int size = 112);

// ArcFace ONNX via cv::dnn. One per thread (cv::dnn::Net is not thread-safe).
class FaceEmbedder {
 public:
  // Throws hallo::Error naming the path if missing or not a loadable ONNX.
  // input_size: the network's square input (112 for every insightface ArcFace).
  explicit FaceEmbedder(const std::string& onnx_path, int input_size = 112);

  // Raw embedding (the model's output size, 512 for ArcFace) of the face with
  // landmarks `lm` in `rgb`.
  std::vector<float> embed(const cv::Mat& rgb, const Landmarks68& lm);
  // Same for an already aligned input_size x input_size RGB crop:
  // blob = (pixel - 127.5) / 127.5, NCHW, RGB.
  std::vector<float> embed_aligned(const cv::Mat& aligned_rgb);

  int input_size() const { return input_size_; }

 private:
  std::string path_;
  int input_size_;
  cv::dnn::Net net_;
};

}  // namespace hallo::face
