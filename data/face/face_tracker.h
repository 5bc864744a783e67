#pragma once
// FaceTracker: the faces of a video's frames, pushed in order, with the HOG
// detector run only every `detect_every` frames. In between, the largest face
// is followed by the 68-point predictor alone, started from the last
// detector box moved and scaled with the face's landmarks (the predictor is
// ~3x cheaper than detection at 320 px, and its cascade converges from a box
// a few pixels off).
//
// Each detection checks the frames tracked since the previous one: if the
// number of faces changed, or the detected box does not overlap the tracked
// one (IoU < 0.5: a cut, the face left, a different face), those frames are
// detected again one by one. So a face appearing, disappearing or jumping is
// seen on the exact frame, as with per-frame detection; only a face that
// vanishes and returns between two detections goes unnoticed (cleaning
// interpolates such short dropouts anyway), and a spurious second face that
// the detector sees on some frames only is counted on detection frames only.
// With no face in view every frame is detected.
//
// Results are final only at the next detection, so they come out up to
// detect_every - 1 frames late, each with its frame (a copy: the caller's
// buffer may be reused). Memory: detect_every frames.
#include <opencv2/core.hpp>

#include <vector>

#include "data/face/landmarks.h"

namespace hallo::face {

struct TrackedFrame {
  int index = 0;          // position in the pushed sequence
  cv::Mat rgb;            // the pushed frame
  int num_faces = 0;      // faces in view (carried from the last detection while tracking)
  bool detected = false;  // the detector ran on this frame (else: tracked)
  FaceObs face;           // the largest face, valid when num_faces > 0
};

class FaceTracker {
 public:
  // detect_every <= 1: detect on every frame (no tracking).
  FaceTracker(FaceAnalyzer& analyzer, int detect_every);

  // Adds the next frame; returns the frames whose faces are now final, in order.
  std::vector<TrackedFrame> push(const cv::Mat& rgb);
  // The frames still held back; call once after the last push.
  std::vector<TrackedFrame> finish();

  int detections() const { return detections_; }  // detector runs so far (retries included)
  int redetected() const { return redetected_; }   // tracked frames detected again after a disagreement

 private:
  void detect_into(TrackedFrame& f);
  cv::Rect2f follow_box(const Landmarks68& last) const;

  FaceAnalyzer& analyzer_;
  int every_;
  int next_index_ = 0;
  FaceObs anchor_;          // the last detected largest face (its box is the predictor's start box)
  int anchor_faces_ = 0;    // faces at that detection; 0 = nothing to track
  std::vector<TrackedFrame> pending_;  // tracked since the last detection, not yet final
  int detections_ = 0, redetected_ = 0;
};

}  // namespace hallo::face
