// FaceAnalyzer: detector (dlib HOG, or YuNet when an ONNX is given) on a
// downscaled grey copy, then dlib's 68-point shape predictor at full resolution
// (landmark precision matters more than detection box precision).
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms.h>
#include <dlib/opencv/cv_image.h>

#include <opencv2/imgproc.hpp>
#ifdef HALLO_FACE_HAVE_YUNET
#include <opencv2/objdetect/face.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "data/face/landmarks.h"

namespace hallo::face {

struct FaceAnalyzer::Impl {
  dlib::frontal_face_detector hog;
  dlib::shape_predictor sp;
#ifdef HALLO_FACE_HAVE_YUNET
  cv::Ptr<cv::FaceDetectorYN> yunet;
#endif
};

namespace {

void require_file(const std::string& path, const char* what) {
  std::error_code ec;
  if (path.empty()) fail("{} path is empty", what);
  if (!std::filesystem::is_regular_file(path, ec))
    fail_at(path, "{} not found (or not a regular file)", what);
}

dlib::shape_predictor load_shape_predictor(const std::string& path) {
  require_file(path, "dlib shape predictor");
  dlib::shape_predictor sp;
  try {
    dlib::deserialize(path) >> sp;
  } catch (const std::exception& e) {  // dlib::serialization_error, bad_alloc on garbage sizes
    fail_at(path, "not a valid dlib shape predictor ({})", e.what());
  }
  if (sp.num_parts() != 68)
    fail_at(path, "shape predictor has {} landmarks, expected the 68-point model", sp.num_parts());
  return sp;
}

// Detector boxes in the coordinates of the (downscaled) detection image.
struct RawDet {
  cv::Rect2f box;
  float score;
};

std::vector<RawDet> detect_hog(dlib::frontal_face_detector& hog, const cv::Mat& gray, int upsample) {
  std::vector<dlib::rect_detection> dets;
  dlib::cv_image<unsigned char> img(gray);
  float scale = 1.0f;
  if (upsample > 0) {
    dlib::array2d<unsigned char> up;
    dlib::assign_image(up, img);
    dlib::pyramid_down<2> pyr;
    for (int i = 0; i < upsample; ++i) {
      dlib::pyramid_up(up, pyr);
      scale *= 2.0f;
    }
    hog(up, dets, 0.0);
  } else {
    hog(img, dets, 0.0);
  }
  std::vector<RawDet> out;
  for (const auto& d : dets) {
    const auto& r = d.rect;
    out.push_back({cv::Rect2f(r.left() / scale, r.top() / scale, r.width() / scale, r.height() / scale),
                   static_cast<float>(d.detection_confidence)});
  }
  return out;
}

}  // namespace

void require_rgb(const cv::Mat& img, const std::string& where) {
  if (img.empty()) fail_at(where, "image is empty");
  if (img.type() != CV_8UC3)
    fail_at(where, "expected an 8-bit 3-channel RGB image (CV_8UC3), got {} channel(s) of depth {}",
            img.channels(), img.depth());
}

FaceAnalyzer::FaceAnalyzer(FaceAnalyzerConfig cfg) : cfg_(std::move(cfg)), impl_(std::make_unique<Impl>()) {
  impl_->sp = load_shape_predictor(cfg_.shape_predictor);
  if (cfg_.onnx_detector.empty()) {
    impl_->hog = dlib::get_frontal_face_detector();
  } else {
#ifdef HALLO_FACE_HAVE_YUNET
    require_file(cfg_.onnx_detector, "YuNet face detector");
    try {
      impl_->yunet = cv::FaceDetectorYN::create(cfg_.onnx_detector, "", cv::Size(320, 320),
                                                cfg_.yunet_score_threshold, 0.3f, 5000);
    } catch (const cv::Exception& e) {
      fail_at(cfg_.onnx_detector, "cannot load YuNet face detector ({})", e.what());
    }
    if (!impl_->yunet) fail_at(cfg_.onnx_detector, "cannot load YuNet face detector");
#else
    fail_at(cfg_.onnx_detector, "YuNet detector requested but OpenCV objdetect was not available at build time");
#endif
  }
}

FaceAnalyzer::~FaceAnalyzer() = default;
FaceAnalyzer::FaceAnalyzer(FaceAnalyzer&&) noexcept = default;
FaceAnalyzer& FaceAnalyzer::operator=(FaceAnalyzer&&) noexcept = default;

std::vector<FaceObs> FaceAnalyzer::analyze(const cv::Mat& rgb) {
  require_rgb(rgb, "FaceAnalyzer::analyze");
  if (!impl_) fail("FaceAnalyzer::analyze: analyzer was moved from");

  cv::Mat gray;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);

  const int max_side = std::max(rgb.cols, rgb.rows);
  const double s = cfg_.detect_max_side > 0 && max_side > cfg_.detect_max_side
                       ? static_cast<double>(cfg_.detect_max_side) / max_side
                       : 1.0;
  const cv::Size small_size(std::max(1, static_cast<int>(std::lround(rgb.cols * s))),
                            std::max(1, static_cast<int>(std::lround(rgb.rows * s))));

  std::vector<RawDet> dets;
#ifdef HALLO_FACE_HAVE_YUNET
  if (impl_->yunet) {
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    if (s < 1.0) cv::resize(bgr, bgr, small_size, 0, 0, cv::INTER_AREA);
    cv::Mat found;  // [N, 15] CV_32F: x, y, w, h, 5 (x, y) points, score
    try {
      impl_->yunet->setInputSize(bgr.size());
      impl_->yunet->detect(bgr, found);
    } catch (const cv::Exception& e) {
      fail_at(cfg_.onnx_detector, "YuNet detection failed ({})", e.what());
    }
    for (int i = 0; i < found.rows; ++i) {
      const float* r = found.ptr<float>(i);
      dets.push_back({cv::Rect2f(r[0], r[1], r[2], r[3]), r[14]});
    }
  } else
#endif
  {
    cv::Mat small = gray;
    if (s < 1.0) cv::resize(gray, small, small_size, 0, 0, cv::INTER_AREA);
    dets = detect_hog(impl_->hog, small, cfg_.upsample);
  }

  const float sx = static_cast<float>(rgb.cols) / small_size.width;
  const float sy = static_cast<float>(rgb.rows) / small_size.height;
  const cv::Rect2f frame(0, 0, static_cast<float>(rgb.cols), static_cast<float>(rgb.rows));
  dlib::cv_image<unsigned char> full(gray);

  std::vector<FaceObs> faces;
  for (const auto& d : dets) {
    FaceObs obs;
    const cv::Rect2f box(d.box.x * sx, d.box.y * sy, d.box.width * sx, d.box.height * sy);
    obs.score = d.score;
    // The predictor starts from a mean shape placed in the unclipped box.
    const dlib::rectangle rect(std::lround(box.x), std::lround(box.y), std::lround(box.x + box.width) - 1,
                               std::lround(box.y + box.height) - 1);
    const dlib::full_object_detection shape = impl_->sp(full, rect);
    for (unsigned long k = 0; k < 68; ++k)
      obs.lm[k] = cv::Point2f(static_cast<float>(shape.part(k).x()), static_cast<float>(shape.part(k).y()));
    obs.box = box & frame;
    obs.start_box = box;
    faces.push_back(obs);
  }
  std::stable_sort(faces.begin(), faces.end(),
                   [](const FaceObs& a, const FaceObs& b) { return a.box.area() > b.box.area(); });
  return faces;
}

FaceObs FaceAnalyzer::landmarks_in(const cv::Mat& rgb, const cv::Rect2f& box) {
  require_rgb(rgb, "FaceAnalyzer::landmarks_in");
  if (!impl_) fail("FaceAnalyzer::landmarks_in: analyzer was moved from");
  cv::Mat gray;
  cv::cvtColor(rgb, gray, cv::COLOR_RGB2GRAY);
  dlib::cv_image<unsigned char> full(gray);
  const dlib::rectangle rect(std::lround(box.x), std::lround(box.y), std::lround(box.x + box.width) - 1,
                             std::lround(box.y + box.height) - 1);
  const dlib::full_object_detection shape = impl_->sp(full, rect);
  FaceObs obs;
  for (unsigned long k = 0; k < 68; ++k)
    obs.lm[k] = cv::Point2f(static_cast<float>(shape.part(k).x()), static_cast<float>(shape.part(k).y()));
  obs.box = box & cv::Rect2f(0, 0, static_cast<float>(rgb.cols), static_cast<float>(rgb.rows));
  obs.start_box = box;
  return obs;
}

}  // namespace hallo::face
