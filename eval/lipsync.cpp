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
  const FaceTrack t = track_face(frames, faces, o.min_side, where);
  if (detected) *detected = t.hits;
  return mouth_openings(t);
}

std::vector<float> mouth_openings(const FaceTrack& t) {
  std::vector<float> mouth(t.landmarks.size());
  for (size_t i = 0; i < mouth.size(); ++i) mouth[i] = face::mouth_opening(t.landmarks[i]);
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
