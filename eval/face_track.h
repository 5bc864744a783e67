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

// Frames whose shorter side is under this are analysed upscaled (bicubic): dlib's HOG
// detector misses faces under ~80 px and generated videos are often 128 px.
constexpr int kDetectMinSide = 256;

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

// Boxes shaped like S3FD's (forehead to chin, ear to ear) from the landmarks:
// face::face_box (jaw + brows, raised by 0.3 of its height). SyncNet's crop geometry
// was tuned on S3FD boxes; dlib's HOG box is tighter (brows to chin) and would zoom in.
std::vector<cv::Rect2f> s3fd_like_boxes(const FaceTrack& t);

// Mean L2 distance between landmarks [first, last) of `gen` (scaled by sx, sy into the
// real video's pixels) and `real`, over the first n frames (LMD).
double landmark_distance(const FaceTrack& gen, const FaceTrack& real, double sx, double sy, int64_t n, int first,
                         int last);

}  // namespace hallo::eval
