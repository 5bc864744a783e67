#include "data/face/face_tracker.h"

#include <cmath>

namespace hallo::face {

namespace {

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

// Centre and RMS radius of a landmark set: where the face is and how big.
void centre_and_radius(const Landmarks68& lm, cv::Point2f& c, float& r) {
  c = {0, 0};
  for (const auto& p : lm) c += p;
  c *= 1.f / static_cast<float>(lm.size());
  double s = 0;
  for (const auto& p : lm) s += (p.x - c.x) * (p.x - c.x) + (p.y - c.y) * (p.y - c.y);
  r = static_cast<float>(std::sqrt(s / lm.size()));
}

}  // namespace

FaceTracker::FaceTracker(FaceAnalyzer& analyzer, int detect_every)
    : analyzer_(analyzer), every_(detect_every < 1 ? 1 : detect_every) {}

void FaceTracker::detect_into(TrackedFrame& f) {
  const auto found = analyzer_.analyze(f.rgb);
  ++detections_;
  f.detected = true;
  f.num_faces = static_cast<int>(found.size());
  f.face = found.empty() ? FaceObs{} : found.front();
}

// The anchor's detector box, moved and scaled as the landmarks moved from the
// anchor frame to `last`: the box the detector would most likely give now.
cv::Rect2f FaceTracker::follow_box(const Landmarks68& last) const {
  cv::Point2f ca, cl;
  float ra = 0, rl = 0;
  centre_and_radius(anchor_.lm, ca, ra);
  centre_and_radius(last, cl, rl);
  const float k = ra > 0 ? rl / ra : 1.f;
  const cv::Rect2f& b = anchor_.start_box;
  const cv::Point2f bc(b.x + b.width / 2, b.y + b.height / 2);
  const cv::Point2f c = cl + (bc - ca) * k;
  const float w = b.width * k, h = b.height * k;
  return {c.x - w / 2, c.y - h / 2, w, h};
}

std::vector<TrackedFrame> FaceTracker::push(const cv::Mat& rgb) {
  TrackedFrame f;
  f.index = next_index_++;
  f.rgb = rgb.clone();
  if (anchor_faces_ > 0 && static_cast<int>(pending_.size()) < every_ - 1) {
    const Landmarks68& last = pending_.empty() ? anchor_.lm : pending_.back().face.lm;
    f.face = analyzer_.landmarks_in(f.rgb, follow_box(last));
    f.num_faces = anchor_faces_;
    pending_.push_back(std::move(f));
    return {};
  }
  detect_into(f);
  if (!pending_.empty()) {
    const Landmarks68& last = pending_.back().face.lm;
    const bool agree = f.num_faces == anchor_faces_ && iou(f.face.start_box, follow_box(last)) >= 0.5f;
    if (!agree)
      for (auto& p : pending_) {
        detect_into(p);
        ++redetected_;
      }
  }
  anchor_faces_ = f.num_faces;
  if (f.num_faces > 0) anchor_ = f.face;
  std::vector<TrackedFrame> out = std::move(pending_);
  pending_.clear();
  out.push_back(std::move(f));
  return out;
}

std::vector<TrackedFrame> FaceTracker::finish() {
  if (!pending_.empty()) {
    // Check the tail as the next detection would have: detect its last frame
    // (which keeps the detector's result) and compare with the box it was
    // tracked from.
    TrackedFrame& tail = pending_.back();
    const cv::Rect2f tracked_from = tail.face.start_box;
    detect_into(tail);
    const bool agree = tail.num_faces == anchor_faces_ && iou(tail.face.start_box, tracked_from) >= 0.5f;
    if (!agree)
      for (size_t i = 0; i + 1 < pending_.size(); ++i) {
        detect_into(pending_[i]);
        ++redetected_;
      }
  }
  std::vector<TrackedFrame> out = std::move(pending_);
  pending_.clear();
  anchor_faces_ = 0;
  return out;
}

}  // namespace hallo::face
