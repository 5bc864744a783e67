#pragma once
// Weight-free lip-sync score: how well the mouth of a talking-head video follows
// the loudness of its speech. Per frame, the mouth opening (dlib 68 landmarks,
// face::mouth_opening: inner-lip gap / nose-to-chin) and the audio RMS over the
// frame's time span (clean::audio_rms_per_frame, the envelope `hallo prepare`'s
// lip-audio rule uses); the score is their Pearson correlation at the best lag
// within +-max_lag frames. Real speech scores ~0.4-0.7 (mouths move before and
// after sounds); a still face or a mouth driven by other audio scores ~0.
//
// The demo's proof of learning, and `hallo eval --metrics lipsync`.
#include <opencv2/core.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/face/landmarks.h"
#include "eval/face_track.h"

namespace hallo::eval {

struct LipSyncOptions {
  int max_lag = 3;      // frames searched either way
  // Frames are upscaled (bicubic) to at least this side before detection: dlib's
  // HOG detector misses faces under ~80 px, and generated videos are often 128 px.
  int min_side = kDetectMinSide;
  int sample_rate = 16000;
  double fps = 25;      // <= 0: the video's own rate
};

struct LipSyncResult {
  double corr = 0;      // best Pearson correlation
  int lag = 0;          // mouth[i] vs loudness[i + lag]
  int frames = 0;
  int detected = 0;     // frames where the detector found the face (others reuse the nearest box)
  std::vector<float> mouth, loudness;
};

// Mouth openings of RGB frames (CV_8UC3). Frames without a detection use the box of
// the nearest frame with one; throws hallo::Error naming `where` if no frame has a face.
std::vector<float> mouth_openings(const std::vector<cv::Mat>& frames, face::FaceAnalyzer& faces,
                                  const LipSyncOptions& o, const std::string& where, int* detected = nullptr);
// The same from a face track (eval/face_track.h): mouth_opening of each frame's landmarks.
std::vector<float> mouth_openings(const FaceTrack& t);

// Score of `mouth` against `audio` (mono, o.sample_rate) at `fps`.
LipSyncResult lipsync_score(const std::vector<float>& mouth, const std::vector<float>& audio, double fps,
                            const LipSyncOptions& o);

// A video file; the audio comes from `audio` (empty: the video's own track).
LipSyncResult lipsync_score_file(const std::filesystem::path& video, const std::filesystem::path& audio,
                                 face::FaceAnalyzer& faces, const LipSyncOptions& o);

}  // namespace hallo::eval
