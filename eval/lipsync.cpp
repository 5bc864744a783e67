#include "eval/lipsync.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "core/error.h"
#include "data/clean/clean.h"
#include "data/clean/signal_stats.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"

namespace hallo::eval {

std::vector<float> mouth_openings(const std::vector<cv::Mat>& frames, face::FaceAnalyzer& faces,
                                  const LipSyncOptions& o, const std::string& where, int* detected) {
  const int n = static_cast<int>(frames.size());
  std::vector<cv::Mat> big(n);
  std::vector<cv::Rect2f> boxes(n);
  std::vector<bool> found(n, false);
  int hits = 0;
  for (int i = 0; i < n; ++i) {
    const cv::Mat& f = frames[i];
    face::require_rgb(f, where);
    const int side = std::min(f.cols, f.rows);
    if (side < o.min_side) {
      const double s = static_cast<double>(o.min_side) / side;
      cv::resize(f, big[i], cv::Size(), s, s, cv::INTER_CUBIC);
    } else {
      big[i] = f;
    }
    const auto obs = faces.analyze(big[i]);
    if (!obs.empty()) {
      boxes[i] = obs.front().box;
      found[i] = true;
      ++hits;
    }
  }
  if (hits == 0) fail_at(where, "no face found in any of its {} frames", n);
  // Frames the detector missed: the nearest detected frame's box (faces move little).
  for (int i = 0; i < n; ++i) {
    if (found[i]) continue;
    for (int d = 1; d < n; ++d) {
      if (i - d >= 0 && found[i - d]) { boxes[i] = boxes[i - d]; break; }
      if (i + d < n && found[i + d]) { boxes[i] = boxes[i + d]; break; }
    }
  }
  std::vector<float> mouth(n);
  for (int i = 0; i < n; ++i) mouth[i] = face::mouth_opening(faces.landmarks_in(big[i], boxes[i]).lm);
  if (detected) *detected = hits;
  return mouth;
}

LipSyncResult lipsync_score(const std::vector<float>& mouth, const std::vector<float>& audio, double fps,
                            const LipSyncOptions& o) {
  LipSyncResult r;
  r.frames = static_cast<int>(mouth.size());
  r.mouth = mouth;
  r.loudness = clean::audio_rms_per_frame(audio, o.sample_rate, fps, mouth.size());
  const auto lc = clean::detail::best_lagged_corr(r.mouth, r.loudness, 0, r.frames, o.max_lag);
  r.corr = lc.corr;
  r.lag = lc.lag;
  return r;
}

LipSyncResult lipsync_score_file(const std::filesystem::path& video, const std::filesystem::path& audio,
                                 face::FaceAnalyzer& faces, const LipSyncOptions& o) {
  media::VideoDecodeOptions vo;
  vo.fps = o.fps;
  media::VideoReader reader(video, vo);
  const double fps = o.fps > 0 ? o.fps : reader.info().fps;
  std::vector<cv::Mat> frames;
  media::RgbFrame f;
  while (reader.next(f)) frames.push_back(cv::Mat(f.height, f.width, CV_8UC3, f.rgb.data()).clone());
  if (frames.size() < 2) fail_at(video.string(), "has {} frames; a lip-sync score needs at least 2", frames.size());
  const auto& src = audio.empty() ? video : audio;
  const std::vector<float> samples = media::read_audio(src, {o.sample_rate});
  int detected = 0;
  const auto mouth = mouth_openings(frames, faces, o, video.string(), &detected);
  LipSyncResult r = lipsync_score(mouth, samples, fps, o);
  r.detected = detected;
  return r;
}

}  // namespace hallo::eval
