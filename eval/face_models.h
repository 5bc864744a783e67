#pragma once
// The plug-in face networks of `hallo eval` (ONNX through OpenCV dnn), on the shared
// face track: an expression-coefficient regressor for E-FID and ArcFace for CSIM.
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/face/embedding.h"
#include "eval/face_track.h"

namespace hallo::eval {

// Per-frame expression coefficients: a square crop of 1.25x the landmark face box
// (edges replicated outside the frame), resized (area) to size x size, RGB, values / 255,
// NCHW; the output flattened and sliced [begin, end) (end < 0: to the end). Deep3DFaceRecon's
// R-Net, for instance, gives 257 values with the 64 expression coefficients at [80, 144).
class ExpressionModel {
 public:
  // Throws hallo::Error naming the file when it is missing or not a loadable ONNX.
  ExpressionModel(const std::filesystem::path& onnx, int size = 224, int begin = 0, int end = -1);
  at::Tensor coeffs(const std::vector<cv::Mat>& rgb_frames, const FaceTrack& t);  // [N, end-begin] float32
  std::string settings() const;  // for the report and the real-set cache key

 private:
  std::string path_;
  cv::dnn::Net net_;
  int size_, begin_, end_;
};

// CSIM: mean ArcFace cosine similarity between the reference face (`ref`, landmarks
// `ref_lm`) and the face in every frame.
double identity_similarity(face::FaceEmbedder& arcface, const std::vector<cv::Mat>& rgb_frames, const FaceTrack& t,
                           const cv::Mat& ref, const face::Landmarks68& ref_lm);

}  // namespace hallo::eval
