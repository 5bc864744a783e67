#pragma once
// One face track per video, shared by every face-based metric (lip-sync, LMD,
// SyncNet crops, CSIM, E-FID): dlib landmarks on every frame, with small frames
// upscaled first (dlib's HOG detector misses faces under ~80 px, and generated
// videos are often 128 px) and frames the detector misses using the nearest
// detected frame's box (faces move little between frames).
#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "data/face/landmarks.h"

namespace hallo::eval {

struct FaceTrack {
  std::vector<cv::Rect2f> boxes;            // detector box per frame, in frame pixels
  std::vector<face::Landmarks68> landmarks;  // per frame, in frame pixels
  std::vector<bool> detected;               // false: the box came from the nearest detected frame
  int hits = 0;
};

// rgb frames (CV_8UC3). Frames whose shorter side is under `min_side` are analysed
// bicubically upscaled to it. Throws hallo::Error naming `where` when no frame has a face.
FaceTrack track_face(const std::vector<cv::Mat>& frames, face::FaceAnalyzer& faces, int min_side,
                     const std::string& where);

}  // namespace hallo::eval
