// ArcFace alignment and the cv::dnn embedder against torch on a tiny stand-in net.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "data/face/embedding.h"
#include "face_test_util.h"

namespace hallo::face {
namespace {

using testing::have_shape_predictor;
using testing::load_astronaut;
using testing::shared_analyzer;

std::string generator() { return std::string(HALLO_FACE_TEST_DIR) + "/make_tiny_arcface.py"; }

int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

// Exports the stand-in once per process; empty path when torch is unavailable.
class TinyArcFace : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<testing::TempDir>();
    const std::string onnx = (dir_->path() / "tiny_arcface.onnx").string();
    if (run(std::string(HALLO_FACE_TEST_PYTHON) + " " + generator() + " export " + onnx) == 0) onnx_ = onnx;
  }
  static void TearDownTestSuite() { dir_.reset(); }

  void SetUp() override {
    if (onnx_.empty()) GTEST_SKIP() << HALLO_FACE_TEST_PYTHON << " with torch unavailable";
  }

  // torch's output for an aligned crop, via the generator script.
  static std::vector<float> torch_reference(const cv::Mat& crop) {
    const std::string in = (dir_->path() / "crop.rgb").string();
    const std::string out = (dir_->path() / "ref.f32").string();
    std::ofstream(in, std::ios::binary)
        .write(reinterpret_cast<const char*>(crop.data), static_cast<std::streamsize>(crop.total() * 3));
    EXPECT_EQ(run(std::string(HALLO_FACE_TEST_PYTHON) + " " + generator() + " run " + in + " " +
                  std::to_string(crop.cols) + " " + out),
              0);
    std::vector<float> ref(512);
    std::ifstream f(out, std::ios::binary);
    f.read(reinterpret_cast<char*>(ref.data()), 512 * sizeof(float));
    EXPECT_EQ(f.gcount(), static_cast<std::streamsize>(512 * sizeof(float)));
    return ref;
  }

  static std::unique_ptr<testing::TempDir> dir_;
  static std::string onnx_;
};
std::unique_ptr<testing::TempDir> TinyArcFace::dir_;
std::string TinyArcFace::onnx_;

double l2(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * static_cast<double>(a[i] - b[i]);
  return std::sqrt(s);
}

TEST_F(TinyArcFace, MatchesTorchOnTheAlignedAstronaut) {
  const cv::Mat img = load_astronaut();
  if (img.empty() || !have_shape_predictor()) GTEST_SKIP() << "fixtures missing";
  const auto faces = shared_analyzer().analyze(img);
  ASSERT_EQ(faces.size(), 1u);
  const cv::Mat crop = align_arcface(img, five_points(faces[0].lm));
  ASSERT_EQ(crop.size(), cv::Size(112, 112));
  ASSERT_TRUE(crop.isContinuous());

  FaceEmbedder emb(onnx_);
  const std::vector<float> got = emb.embed(img, faces[0].lm);
  ASSERT_EQ(got.size(), 512u);
  const std::vector<float> ref = torch_reference(crop);
  double ref_norm = 0;
  for (float v : ref) ref_norm += v * static_cast<double>(v);
  ref_norm = std::sqrt(ref_norm);
  ASSERT_GT(ref_norm, 1e-3);
  EXPECT_LT(l2(got, ref) / ref_norm, 1e-4);
  for (size_t i = 0; i < 512; ++i) ASSERT_NEAR(got[i], ref[i], 1e-4 * (1 + std::abs(ref[i]))) << i;

  // Deterministic, and the raw (unnormalised) output.
  EXPECT_EQ(emb.embed(img, faces[0].lm), got);
  EXPECT_GT(std::abs(ref_norm - 1.0), 1e-3);
}

TEST_F(TinyArcFace, DifferentFacesDifferentEmbeddings) {
  const cv::Mat img = load_astronaut();
  if (img.empty() || !have_shape_predictor()) GTEST_SKIP() << "fixtures missing";
  // A different "identity": the astronaut with swapped colour channels.
  cv::Mat other;
  cv::cvtColor(img, other, cv::COLOR_RGB2BGR);
  const auto a = shared_analyzer().analyze(img);
  const auto b = shared_analyzer().analyze(other);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  FaceEmbedder emb(onnx_);
  const auto ea = emb.embed(img, a[0].lm);
  const auto eb = emb.embed(other, b[0].lm);
  ASSERT_EQ(eb.size(), 512u);
  EXPECT_GT(l2(ea, eb), 1e-3 * l2(ea, std::vector<float>(512, 0.0f)));
}

TEST_F(TinyArcFace, RejectsWrongCropSize) {
  FaceEmbedder emb(onnx_);
  try {
    emb.embed_aligned(cv::Mat(100, 100, CV_8UC3, cv::Scalar::all(0)));
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find(onnx_), std::string::npos) << e.what();
  }
}

TEST(FaceEmbedder, MissingOrCorruptModelNamesThePath) {
  testing::TempDir dir;
  const std::string missing = (dir.path() / "glintr100.onnx").string();
  try {
    FaceEmbedder e(missing);
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
  }
  const std::string garbage = (dir.path() / "garbage.onnx").string();
  std::ofstream(garbage) << "definitely not protobuf \x01\x02\x03";
  try {
    FaceEmbedder e(garbage);
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find(garbage), std::string::npos) << e.what();
  }
}

TEST(Alignment, FivePointsFromLandmarks) {
  Landmarks68 lm;
  for (int i = 0; i < 68; ++i) lm[i] = cv::Point2f(static_cast<float>(i), static_cast<float>(2 * i));
  const auto p = five_points(lm);
  EXPECT_EQ(p[0], cv::Point2f(38.5f, 77.0f));  // mean of 36..41
  EXPECT_EQ(p[1], cv::Point2f(44.5f, 89.0f));  // mean of 42..47
  EXPECT_EQ(p[2], lm[30]);
  EXPECT_EQ(p[3], lm[48]);
  EXPECT_EQ(p[4], lm[54]);
}

TEST(Alignment, RecoversAKnownSimilarity) {
  // Points = template pushed through the inverse of a known similarity S.
  const double a = 25 * M_PI / 180, s = 0.4;
  const cv::Matx23d S(s * std::cos(a), -s * std::sin(a), -30, s * std::sin(a), s * std::cos(a), 12);
  const cv::Matx33d S3(S(0, 0), S(0, 1), S(0, 2), S(1, 0), S(1, 1), S(1, 2), 0, 0, 1);
  const cv::Matx33d inv = S3.inv();
  const auto dst = arcface_template(112);
  std::array<cv::Point2f, 5> pts;
  for (int i = 0; i < 5; ++i) {
    const cv::Vec3d q = inv * cv::Vec3d(dst[i].x, dst[i].y, 1);
    pts[i] = cv::Point2f(static_cast<float>(q[0]), static_cast<float>(q[1]));
  }
  const cv::Mat M = arcface_transform(pts, 112);
  ASSERT_EQ(M.type(), CV_64F);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) EXPECT_NEAR(M.at<double>(r, c), S(r, c), 1e-3 * (c == 2 ? 100 : 1)) << r << c;

  // Other crop sizes scale the template.
  const auto t224 = arcface_template(224);
  EXPECT_NEAR(t224[2].x, 2 * dst[2].x, 1e-4);
}

TEST(Alignment, SimilarityTransformedImageGivesTheSameCrop) {
  const cv::Mat img = load_astronaut();
  if (img.empty() || !have_shape_predictor()) GTEST_SKIP() << "fixtures missing";
  const auto faces = shared_analyzer().analyze(img);
  ASSERT_EQ(faces.size(), 1u);
  const Landmarks68& lm = faces[0].lm;

  // Rotate 15 degrees, shrink to 0.8 and shift; move the landmarks along.
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(256, 256), 15.0, 0.8);
  M.at<double>(0, 2) += 20;
  M.at<double>(1, 2) -= 12;
  cv::Mat moved;
  cv::warpAffine(img, moved, M, img.size(), cv::INTER_CUBIC, cv::BORDER_REFLECT);
  const cv::Matx23d Mx = M;
  Landmarks68 lm2;
  for (int i = 0; i < 68; ++i) {
    const cv::Vec2d q = Mx * cv::Vec3d(lm[i].x, lm[i].y, 1);
    lm2[i] = cv::Point2f(static_cast<float>(q[0]), static_cast<float>(q[1]));
  }
  const cv::Mat a = align_arcface(img, five_points(lm));
  const cv::Mat b = align_arcface(moved, five_points(lm2));
  const double mad = cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total() * 3);
  EXPECT_LT(mad, 4.0);
  // A crop of a different place in the frame is far from it: the bound means something.
  const cv::Mat off = align_arcface(img, five_points(lm2));
  EXPECT_GT(cv::norm(a, off, cv::NORM_L1) / static_cast<double>(a.total() * 3), 4 * mad + 4.0);

  // Re-detecting on the transformed frame lands close as well (HOG wants the
  // small, rotated face at full resolution).
  FaceAnalyzerConfig cfg;
  cfg.detect_max_side = 0;
  FaceAnalyzer full_res(cfg);
  const auto again = full_res.analyze(moved);
  ASSERT_EQ(again.size(), 1u);
  const cv::Mat c = align_arcface(moved, five_points(again[0].lm));
  EXPECT_LT(cv::norm(a, c, cv::NORM_L1) / static_cast<double>(a.total() * 3), 15.0);
}

TEST(Alignment, RejectsNonRgb) {
  std::array<cv::Point2f, 5> pts = arcface_template(112);
  EXPECT_THROW(align_arcface(cv::Mat(), pts), hallo::Error);
  EXPECT_THROW(align_arcface(cv::Mat(112, 112, CV_8UC1, cv::Scalar(0)), pts), hallo::Error);
  // All five points on one spot: no similarity transform exists.
  std::array<cv::Point2f, 5> same;
  same.fill(cv::Point2f(10, 10));
  EXPECT_THROW(align_arcface(cv::Mat(112, 112, CV_8UC3, cv::Scalar::all(0)), same), hallo::Error);
}

}  // namespace
}  // namespace hallo::face
