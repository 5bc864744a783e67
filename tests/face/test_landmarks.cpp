// FaceAnalyzer on the astronaut portrait, landmark geometry and head pose.
#include <gtest/gtest.h>

#include <opencv2/calib3d.hpp>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "data/face/landmarks.h"
#include "data/face/pose.h"
#include "face_test_util.h"

namespace hallo::face {
namespace {

using testing::have_shape_predictor;
using testing::load_astronaut;
using testing::shared_analyzer;

#define REQUIRE_FIXTURES(img)                                                   \
  if (!have_shape_predictor()) GTEST_SKIP() << "dlib shape predictor missing";  \
  if ((img).empty()) GTEST_SKIP() << "missing " << testing::astronaut_path()

cv::Point2f mean_pt(const Landmarks68& lm, int a, int b) {
  cv::Point2f s(0, 0);
  for (int i = a; i <= b; ++i) s += lm[i];
  return s / static_cast<float>(b - a + 1);
}

bool inside(const cv::Rect2f& outer, const cv::Rect2f& inner) {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width &&
         inner.y + inner.height <= outer.y + outer.height;
}

TEST(FaceAnalyzer, AstronautHasOnePlausibleFrontalFace) {
  const cv::Mat img = load_astronaut();
  REQUIRE_FIXTURES(img);
  const auto faces = shared_analyzer().analyze(img);
  ASSERT_EQ(faces.size(), 1u);
  const FaceObs& f = faces[0];
  const Landmarks68& lm = f.lm;

  // A real portrait face: a sizeable box well inside the 512 px frame.
  EXPECT_GT(f.box.width, 60.0f);
  EXPECT_LT(f.box.width, 400.0f);
  EXPECT_GT(f.score, 0.0f);

  // Vertical order: eyes above nose tip above mouth above chin.
  const float eyes_y = (mean_pt(lm, 36, 41).y + mean_pt(lm, 42, 47).y) / 2;
  const float mouth_y = mean_pt(lm, 48, 67).y;
  EXPECT_LT(eyes_y, lm[30].y);
  EXPECT_LT(lm[30].y, mouth_y);
  EXPECT_LT(mouth_y, lm[8].y);
  // Horizontal order: image-left eye left of nose left of image-right eye.
  EXPECT_LT(mean_pt(lm, 36, 41).x, lm[30].x);
  EXPECT_LT(lm[30].x, mean_pt(lm, 42, 47).x);

  // Inner features inside the detector box (jaw points may touch its edges).
  const cv::Rect2f box = f.box;
  for (int i = 27; i < 68; ++i)
    EXPECT_TRUE(box.contains(lm[i])) << "landmark " << i << " at " << lm[i] << " outside " << box;

  const cv::Rect2f fb = face_box(lm);
  const cv::Rect2f lb = lip_box(lm);
  EXPECT_TRUE(inside(fb, lb)) << fb << " vs " << lb;
  // The forehead extension reaches above the brows.
  EXPECT_LT(fb.y, std::min(lm[19].y, lm[24].y) - 0.2f * (lm[8].y - lm[19].y));
  EXPECT_GE(mouth_opening(lm), 0.0f);
  EXPECT_LT(mouth_opening(lm), 0.5f);

  const HeadPose p = estimate_pose(lm, img.size());
  EXPECT_LT(std::abs(p.yaw), 20.0f);
  EXPECT_LT(std::abs(p.pitch), 20.0f);
  EXPECT_LT(std::abs(p.roll), 15.0f);
}

TEST(FaceAnalyzer, MirroredImageMirrorsLandmarksAndYaw) {
  const cv::Mat img = load_astronaut();
  REQUIRE_FIXTURES(img);
  cv::Mat flipped;
  cv::flip(img, flipped, 1);
  const auto a = shared_analyzer().analyze(img);
  const auto b = shared_analyzer().analyze(flipped);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  const float W = static_cast<float>(img.cols);
  // The nose tip is its own mirror image; the chin likewise.
  EXPECT_NEAR(b[0].lm[30].x, W - 1 - a[0].lm[30].x, 4.0f);
  EXPECT_NEAR(b[0].lm[8].y, a[0].lm[8].y, 4.0f);
  const float ya = estimate_pose(a[0].lm, img.size()).yaw;
  const float yb = estimate_pose(b[0].lm, img.size()).yaw;
  EXPECT_NEAR(ya, -yb, 4.0f);
  if (std::abs(ya) > 2.0f) {
    EXPECT_LT(ya * yb, 0.0f) << ya << " " << yb;
  }
}

TEST(FaceAnalyzer, TwoFacesLargestFirst) {
  const cv::Mat img = load_astronaut();
  REQUIRE_FIXTURES(img);
  // Two copies of the head (the suit's mission patch is face-like to HOG at
  // full resolution, so leave it out), the right one 1.4x larger.
  const cv::Mat head = img(cv::Rect(100, 0, 260, 260));
  cv::Mat big;
  cv::resize(head, big, cv::Size(), 1.4, 1.4, cv::INTER_CUBIC);
  cv::Mat canvas(big.rows, head.cols + 30 + big.cols, CV_8UC3, cv::Scalar(128, 128, 128));
  head.copyTo(canvas(cv::Rect(0, 40, head.cols, head.rows)));
  big.copyTo(canvas(cv::Rect(head.cols + 30, 0, big.cols, big.rows)));

  FaceAnalyzerConfig cfg;
  cfg.detect_max_side = 1024;  // both faces must stay above HOG's ~80 px window
  FaceAnalyzer analyzer(cfg);
  const auto faces = analyzer.analyze(canvas);
  ASSERT_EQ(faces.size(), 2u);
  EXPECT_GT(faces[0].box.area(), 1.5f * faces[1].box.area());
  EXPECT_GT(faces[0].lm[30].x, head.cols);  // the larger copy is on the right
  EXPECT_LT(faces[1].lm[30].x, head.cols);
  // Landmarks follow the copy: inter-ocular distance scales by 1.4.
  const float d0 = static_cast<float>(cv::norm(faces[0].lm[45] - faces[0].lm[36]));
  const float d1 = static_cast<float>(cv::norm(faces[1].lm[45] - faces[1].lm[36]));
  EXPECT_NEAR(d0 / d1, 1.4f, 0.15f);
}

TEST(FaceAnalyzer, BlankImageHasNoFace) {
  if (!have_shape_predictor()) GTEST_SKIP() << "dlib shape predictor missing";
  const cv::Mat blank(512, 512, CV_8UC3, cv::Scalar(200, 180, 160));
  EXPECT_TRUE(shared_analyzer().analyze(blank).empty());
}

TEST(FaceAnalyzer, RejectsNonRgbInput) {
  if (!have_shape_predictor()) GTEST_SKIP() << "dlib shape predictor missing";
  for (const cv::Mat& bad : {cv::Mat(), cv::Mat(64, 64, CV_8UC1, cv::Scalar(0)),
                             cv::Mat(64, 64, CV_8UC4, cv::Scalar::all(0)), cv::Mat(64, 64, CV_32FC3, cv::Scalar::all(0))}) {
    try {
      shared_analyzer().analyze(bad);
      ADD_FAILURE() << "no error for type " << bad.type();
    } catch (const hallo::Error& e) {
      EXPECT_NE(std::string(e.what()).find("FaceAnalyzer::analyze"), std::string::npos) << e.what();
    }
  }
}

void expect_load_error(const std::string& path, const std::string& reason) {
  FaceAnalyzerConfig cfg;
  cfg.shape_predictor = path;
  try {
    FaceAnalyzer a(cfg);
    ADD_FAILURE() << "no error loading " << path;
  } catch (const hallo::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find(reason), std::string::npos) << msg;
  }
}

TEST(FaceAnalyzer, MissingOrCorruptShapePredictorNamesThePath) {
  testing::TempDir dir;
  expect_load_error((dir.path() / "nope.dat").string(), "not found");

  const std::string garbage = (dir.path() / "garbage.dat").string();
  std::ofstream(garbage) << "this is not a dlib model";
  expect_load_error(garbage, "not a valid dlib shape predictor");

  if (have_shape_predictor()) {  // a truncated download
    const std::string truncated = (dir.path() / "truncated.dat").string();
    std::ifstream in(FaceAnalyzerConfig{}.shape_predictor, std::ios::binary);
    std::string head(1 << 16, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    std::ofstream(truncated, std::ios::binary) << head;
    expect_load_error(truncated, "not a valid dlib shape predictor");
  }
}

TEST(FaceAnalyzer, MissingYunetModelNamesThePath) {
  if (!have_shape_predictor()) GTEST_SKIP() << "dlib shape predictor missing";
  FaceAnalyzerConfig cfg;
  cfg.onnx_detector = "/nonexistent/face_detection_yunet.onnx";
  try {
    FaceAnalyzer a(cfg);
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find(cfg.onnx_detector), std::string::npos) << e.what();
  }
}

// --- geometry on synthetic landmarks ---

// Landmarks from the generic 3D model rotated by R and placed at t in front of
// a 512 px camera; points the model lacks stay at the image centre.
Landmarks68 project_model(const cv::Matx33d& R, cv::Vec3d t = cv::Vec3d(0, 0, 2000)) {
  const cv::Size image(512, 512);
  const auto& model = generic_face_model();
  std::vector<cv::Point3f> obj(model.begin(), model.end());
  std::vector<cv::Point2f> img;
  cv::Vec3d rvec;
  cv::Rodrigues(R, rvec);
  cv::projectPoints(obj, rvec, t, pinhole_camera(image), cv::noArray(), img);
  Landmarks68 lm;
  lm.fill(cv::Point2f(256, 256));
  for (size_t i = 0; i < img.size(); ++i) lm[generic_face_model_ids()[i]] = img[i];
  return lm;
}

Landmarks68 project_model(cv::Vec3d rvec) {
  cv::Matx33d R;
  cv::Rodrigues(rvec, R);
  return project_model(R);
}

constexpr double kRad = M_PI / 180.0;

TEST(HeadPose, RecoversKnownYawPitchRollWithinTwoDegrees) {
  const cv::Size image(512, 512);
  for (double deg : {-35.0, -20.0, -5.0, 0.0, 10.0, 25.0, 40.0}) {
    // Rotating about the camera's down axis by -deg turns the face towards the image right.
    const Landmarks68 lm = project_model(cv::Vec3d(0, -deg * kRad, 0));
    const float eye_mid = (lm[36].x + lm[45].x) / 2;
    ASSERT_LT(lm[36].x, lm[45].x);
    if (deg > 0) {
      EXPECT_GT(lm[30].x, eye_mid);  // nose swings to the image right
    } else if (deg < 0) {
      EXPECT_LT(lm[30].x, eye_mid);
    }
    const HeadPose p = estimate_pose(lm, image);
    EXPECT_NEAR(p.yaw, deg, 2.0) << "yaw " << deg;
    EXPECT_NEAR(p.pitch, 0.0, 2.0) << "yaw " << deg;
    EXPECT_NEAR(p.roll, 0.0, 2.0) << "yaw " << deg;
  }
  for (double deg : {-20.0, 15.0}) {
    const HeadPose p = estimate_pose(project_model(cv::Vec3d(-deg * kRad, 0, 0)), image);
    EXPECT_NEAR(p.pitch, deg, 2.0) << "pitch " << deg;
    EXPECT_NEAR(p.yaw, 0.0, 2.0) << "pitch " << deg;
  }
  for (double deg : {-25.0, 12.0}) {
    const Landmarks68 lm = project_model(cv::Vec3d(0, 0, deg * kRad));
    if (deg > 0) {
      EXPECT_GT(lm[45].y, lm[36].y);  // clockwise: image-right eye drops
    }
    const HeadPose p = estimate_pose(lm, image);
    EXPECT_NEAR(p.roll, deg, 2.0) << "roll " << deg;
    EXPECT_NEAR(p.yaw, 0.0, 2.0) << "roll " << deg;
  }
}

TEST(HeadPose, IsRelativeToTheLineOfSight) {
  const cv::Vec3d t(700, -550, 2000);  // far up and right in the frame
  const cv::Matx33d ray = view_ray_rotation(t);
  const cv::Vec3d axis = ray * cv::Vec3d(0, 0, 1);
  EXPECT_NEAR(axis.dot(t / cv::norm(t)), 1.0, 1e-9);
  // Facing the camera from off-centre reads frontal ...
  HeadPose p = estimate_pose(project_model(ray, t), cv::Size(512, 512));
  EXPECT_NEAR(p.yaw, 0.0, 1.0);
  EXPECT_NEAR(p.pitch, 0.0, 1.0);
  EXPECT_NEAR(p.roll, 0.0, 1.0);
  // ... and a known turn on top of that is recovered.
  cv::Matx33d turn;
  cv::Rodrigues(cv::Vec3d(0, -25 * M_PI / 180, 0), turn);
  p = estimate_pose(project_model(ray * turn, t), cv::Size(512, 512));
  EXPECT_NEAR(p.yaw, 25.0, 2.0);
  EXPECT_NEAR(p.pitch, 0.0, 2.0);
}

TEST(HeadPose, RejectsDegenerateInput) {
  Landmarks68 zeros;
  zeros.fill(cv::Point2f(0, 0));
  EXPECT_THROW(estimate_pose(zeros, cv::Size(512, 512)), hallo::Error);
  Landmarks68 nan = project_model(cv::Vec3d(0, 0, 0));
  nan[30].x = std::nanf("");
  EXPECT_THROW(estimate_pose(nan, cv::Size(512, 512)), hallo::Error);
  EXPECT_THROW(estimate_pose(project_model(cv::Vec3d(0, 0, 0)), cv::Size(0, 0)), hallo::Error);
}

Landmarks68 synthetic_face(float gap) {
  Landmarks68 lm;
  lm.fill(cv::Point2f(0, 0));
  for (int i = 0; i <= 16; ++i)  // jaw: a U from (100,100) down to (150,200) and up to (200,100)
    lm[i] = cv::Point2f(100.0f + 100.0f * i / 16, 100.0f + 100.0f * std::sin(M_PI * i / 16));
  for (int i = 17; i <= 26; ++i) lm[i] = cv::Point2f(110.0f + 8.0f * (i - 17), 90.0f);
  lm[27] = {150, 100};
  for (int i = 48; i <= 59; ++i) lm[i] = cv::Point2f(130.0f + 40.0f * (i - 48) / 11, 160.0f - gap / 2 - 5);
  for (int i = 60; i <= 64; ++i) lm[i] = cv::Point2f(135.0f + 7.5f * (i - 60), 160.0f - gap / 2);
  for (int i = 65; i <= 67; ++i) lm[i] = cv::Point2f(135.0f + 7.5f * (68 - i), 160.0f + gap / 2);
  return lm;
}

TEST(Geometry, FaceAndLipBoxes) {
  const Landmarks68 lm = synthetic_face(10);
  const cv::Rect2f plain = face_box(lm, 0.0f);
  EXPECT_FLOAT_EQ(plain.x, 100);
  EXPECT_FLOAT_EQ(plain.width, 100);
  EXPECT_FLOAT_EQ(plain.y, 90);                      // brows
  EXPECT_NEAR(plain.y + plain.height, 200, 1e-3);    // chin
  const cv::Rect2f tall = face_box(lm, 0.3f);
  EXPECT_NEAR(tall.y, 90 - 0.3 * 110, 1e-3);
  EXPECT_NEAR(tall.y + tall.height, 200, 1e-3);
  const cv::Rect2f lip = lip_box(lm);
  EXPECT_FLOAT_EQ(lip.x, 130);
  EXPECT_FLOAT_EQ(lip.width, 40);
  EXPECT_FLOAT_EQ(lip.y, 150);
  EXPECT_FLOAT_EQ(lip.y + lip.height, 165);

  const cv::Rect2f u = union_box({cv::Rect2f(0, 0, 10, 10), cv::Rect2f(5, -5, 10, 10)});
  EXPECT_EQ(u, cv::Rect2f(0, -5, 15, 15));
  EXPECT_TRUE(union_box({}).empty());
}

TEST(Geometry, MouthOpeningIsScaleAndRotationInvariant) {
  const float closed = mouth_opening(synthetic_face(0));
  const float open = mouth_opening(synthetic_face(30));
  EXPECT_NEAR(closed, 0.0f, 1e-6);
  EXPECT_NEAR(open, 30.0f / 100.0f, 1e-4);  // nose bridge (150,100) to chin (150,200)

  Landmarks68 moved = synthetic_face(30);
  const cv::Matx23f M = cv::getRotationMatrix2D(cv::Point2f(150, 150), 30.0, 2.5);
  for (auto& p : moved) p = M * cv::Vec3f(p.x, p.y, 1);
  EXPECT_NEAR(mouth_opening(moved), open, 1e-4);
}

}  // namespace
}  // namespace hallo::face
