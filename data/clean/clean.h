#pragma once
// Video cleaning for training data (Hallo paper, sec. 4.1): decide which time
// ranges of a talking-head video are usable. Keeps single-person, frontal,
// speaking footage whose lips follow the audio; drops scene changes, large camera
// or facial motion and profile faces. Every rule is a CleanConfig value and every
// dropped range carries a stable reason string, so `hallo prepare` can report why.
//
// Pipeline: MotionAnalyzer (per decoded frame) + audio_rms_per_frame + the
// caller's per-frame face analysis -> clean_video() -> cut_clips().
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace hallo::clean {

struct FrameObs {                      // per video frame, filled by the caller
  int num_faces = 0;
  cv::Rect2f face_box;                 // largest face, pixels
  float yaw = 0, pitch = 0, roll = 0;  // degrees
  float mouth_open = 0;                // inner-lip gap / face height
};

struct CleanConfig {
  double fps = 25;
  double scene_cut_threshold = 0.5;    // Bhattacharyya distance of HSV H-S histograms of consecutive frames
  double max_camera_motion = 2.0;      // median background motion, px/frame at 256 px width (outside face box)
  double max_face_motion = 0.08;       // face-box centre speed / face size per frame (median over a window)
  double max_face_scale_change = 0.3;  // max/min face size - 1 within a kept segment (longer runs are split)
  double max_yaw = 45;                 // |yaw| beyond -> profile
  double min_lip_audio_corr = 0.3;     // Pearson corr of mouth_open vs audio RMS envelope, best lag in ±lip_audio_max_lag
  // Lips that barely move (a still image over speech) can still correlate by chance with
  // landmark jitter; below this standard deviation of mouth_open the run fails lip-audio.
  double min_mouth_std = 0.004;  // a still portrait over speech measured 7e-5; synthetic speech 0.04
  double min_voice_ratio = 0.3;        // fraction of frames with audio RMS above silence_rms
  double min_segment_s = 0.8;          // shorter kept segments are dropped (0.8 s: the 20-frame minimum clip)
  int max_av_frame_diff = 3;           // |audio frames - video frames| beyond -> whole video dropped
  int min_faces_bad_run = 3;           // shorter runs of 0 / >=2 faces are interpolated over
  // Not in the paper; knobs of the measurements above.
  double silence_rms = 0.01;           // ~ -40 dBFS on [-1, 1] float audio
  int motion_window = 5;               // frames in the sliding median of camera / face motion
  int lip_audio_max_lag = 2;           // frames searched either way for the lip-audio correlation
  double face_mask_margin = 0.5;       // face box grown by this * size per side before masking it out
};

// Reads the fields present in `j` over the defaults; unknown keys and bad values
// throw hallo::Error naming `where` and the field.
CleanConfig clean_config_from_json(const nlohmann::json& j, const std::string& where);
nlohmann::json clean_config_to_json(const CleanConfig& cfg);
// Throws hallo::Error naming `where` when a value is out of range.
void validate(const CleanConfig& cfg, const std::string& where);

// One entry per pushed frame; entry 0 (no predecessor) is 0.
struct FrameStats {
  std::vector<float> scene_dist;     // histogram distance to the previous frame, [0, 1]
  std::vector<float> camera_motion;  // background translation, px/frame at 256 px width
};

// Computed on the RGB frames in a streaming fashion (call once per frame, in
// order). Frames wider than 256 px are downscaled first; any size works.
class MotionAnalyzer {
 public:
  explicit MotionAnalyzer(const CleanConfig& cfg);
  // `rgb`: CV_8UC3 RGB frame; `face_box` in its pixels, may be empty (no face).
  void push(const cv::Mat& rgb, const cv::Rect2f& face_box);
  const FrameStats& stats() const { return stats_; }

 private:
  double face_mask_margin_;
  cv::Mat prev_gray_, prev_hist_;
  cv::Rect2f prev_box_;  // in analysis pixels
  cv::Size first_size_;
  FrameStats stats_;
};

// RMS of `audio` over each video frame's time span [i/fps, (i+1)/fps); samples
// past the end of `audio` count as silence. Returns n_frames values.
std::vector<float> audio_rms_per_frame(const std::vector<float>& audio, int sample_rate, double fps,
                                       size_t n_frames);
// How many video frames the audio spans (rounded), for the av length check.
int audio_frame_count(size_t n_samples, int sample_rate, double fps);

struct Segment {
  int begin = 0, end = 0;  // [begin, end) frames
  nlohmann::json scores;   // mean_yaw, mean_abs_yaw, lip_audio_corr, lip_audio_lag, camera_motion, ...
};

// Stable reason strings, one per rule.
namespace reason {
inline constexpr const char* kTwoFaces = "two faces";
inline constexpr const char* kNoFace = "no face";
inline constexpr const char* kSceneCut = "scene cut";
inline constexpr const char* kCameraMotion = "camera motion";
inline constexpr const char* kFaceMotion = "face motion";
inline constexpr const char* kProfile = "profile";
inline constexpr const char* kLipAudio = "lip-audio";
inline constexpr const char* kSilent = "silent";
inline constexpr const char* kTooShort = "too short";
inline constexpr const char* kAvMismatch = "av length mismatch";
}  // namespace reason

struct Rejection {
  // [begin, end) frames. A hard scene cut between frames i-1 and i is recorded
  // as the empty range [i, i); a gradual transition rejects its middle frames.
  int begin = 0, end = 0;
  std::string reason;      // one of hallo::clean::reason
  nlohmann::json detail;   // the measured value(s) and the limit
};

struct CleanResult {
  std::vector<Segment> kept;         // ordered by begin, disjoint
  std::vector<Rejection> rejected;   // ordered by begin
};

// `motion` may be empty (no measurements: no scene cuts, no camera motion);
// otherwise its vectors and `audio_rms` must have frames.size() entries.
// `audio_frames` is audio_frame_count() of the decoded audio.
CleanResult clean_video(const std::vector<FrameObs>& frames, const FrameStats& motion,
                        const std::vector<float>& audio_rms, int audio_frames, const CleanConfig& cfg);

nlohmann::json result_to_json(const CleanResult& r);

// Cut kept segments into clips of `length` frames with `stride` (0 = length):
// returns [begin,end) ranges, each inside one segment. What is left of a segment after
// its last whole clip (all of it when the segment is shorter than `length`) becomes one
// shorter clip when it has at least `min_length` frames (0: never).
std::vector<std::pair<int, int>> cut_clips(const std::vector<Segment>& kept, int length, int stride,
                                          int min_length = 0);

}  // namespace hallo::clean
