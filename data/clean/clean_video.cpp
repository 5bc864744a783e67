// The cleaning rules: scene pieces -> per-frame rules -> good runs -> per-run
// audio rules -> kept segments. Every dropped frame ends up in exactly one
// Rejection (hard scene cuts drop none and are recorded as empty ranges).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "data/clean/clean.h"
#include "data/clean/signal_stats.h"

namespace hallo::clean {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Range {
  int begin, end;
};

float box_size(const cv::Rect2f& b) {
  return (b.width > 0 && b.height > 0) ? std::sqrt(b.width * b.height) : 0.f;
}

// Splits [0, n) at scene cuts. A run of consecutive frames whose distance to the
// previous frame exceeds the threshold is a transition: frames i..j-1 belong to
// neither scene and are rejected; a hard cut (j == i) drops nothing.
std::vector<Range> scene_pieces(const std::vector<float>& dist, int n, const CleanConfig& cfg,
                                std::vector<Rejection>& rejected) {
  std::vector<Range> pieces;
  int start = 0;
  for (int i = 1; i < n && !dist.empty(); ++i) {
    if (!(dist[i] > cfg.scene_cut_threshold)) continue;
    int j = i;
    float worst = dist[i];
    while (j + 1 < n && dist[j + 1] > cfg.scene_cut_threshold) worst = std::max(worst, dist[++j]);
    if (i > start) pieces.push_back({start, i});
    rejected.push_back({i, j, reason::kSceneCut, {{"distance", worst}, {"limit", cfg.scene_cut_threshold}}});
    start = j;
    i = j;
  }
  if (n > start) pieces.push_back({start, n});
  return pieces;
}

// Copies the face observations of a piece and fills short runs of frames
// without exactly one face (detector dropouts, a passing second face) by linear
// interpolation between the good neighbours. Returns per-frame face reasons
// (nullptr = usable) for the runs that stay bad.
std::vector<const char*> fill_face_dropouts(const std::vector<FrameObs>& frames, Range piece,
                                            const CleanConfig& cfg, std::vector<FrameObs>& track) {
  std::vector<const char*> why(frames.size(), nullptr);
  for (int i = piece.begin; i < piece.end; ++i) track[i] = frames[i];
  int i = piece.begin;
  while (i < piece.end) {
    if (frames[i].num_faces == 1) {
      ++i;
      continue;
    }
    int j = i;
    while (j < piece.end && frames[j].num_faces != 1) ++j;
    const bool has_prev = i > piece.begin, has_next = j < piece.end;
    if (j - i < cfg.min_faces_bad_run && (has_prev || has_next)) {
      const FrameObs& a = has_prev ? frames[i - 1] : frames[j];
      const FrameObs& b = has_next ? frames[j] : frames[i - 1];
      for (int k = i; k < j; ++k) {
        const float t = float(k - i + 1) / float(j - i + 1);
        auto mix = [t](float x, float y) { return x + t * (y - x); };
        FrameObs& f = track[k];
        f.num_faces = 1;
        f.face_box = cv::Rect2f(mix(a.face_box.x, b.face_box.x), mix(a.face_box.y, b.face_box.y),
                                mix(a.face_box.width, b.face_box.width), mix(a.face_box.height, b.face_box.height));
        f.yaw = mix(a.yaw, b.yaw);
        f.pitch = mix(a.pitch, b.pitch);
        f.roll = mix(a.roll, b.roll);
        f.mouth_open = mix(a.mouth_open, b.mouth_open);
      }
    } else {
      for (int k = i; k < j; ++k) why[k] = frames[k].num_faces == 0 ? reason::kNoFace : reason::kTwoFaces;
    }
    i = j;
  }
  return why;
}

// Face-box centre speed relative to face size, per frame; NaN where either
// this or the previous frame has no usable face (or at the piece start).
std::vector<float> face_speed(const std::vector<FrameObs>& track, const std::vector<const char*>& face_why,
                              Range piece) {
  std::vector<float> v(track.size(), kNaN);
  for (int i = piece.begin + 1; i < piece.end; ++i) {
    if (face_why[i] || face_why[i - 1]) continue;
    const cv::Rect2f& a = track[i - 1].face_box;
    const cv::Rect2f& b = track[i].face_box;
    const float size = 0.5f * (box_size(a) + box_size(b));
    if (!(size > 0)) continue;
    const float dx = (b.x + 0.5f * b.width) - (a.x + 0.5f * a.width);
    const float dy = (b.y + 0.5f * b.height) - (a.y + 0.5f * a.height);
    v[i] = std::hypot(dx, dy) / size;
  }
  return v;
}

// Groups consecutive frames with the same non-null reason into rejections.
void add_frame_rejections(const std::vector<const char*>& why, Range piece, const std::vector<FrameObs>& track,
                          const std::vector<float>& cam, const std::vector<float>& face, const CleanConfig& cfg,
                          std::vector<Rejection>& out) {
  int i = piece.begin;
  while (i < piece.end) {
    if (!why[i]) {
      ++i;
      continue;
    }
    int j = i;
    while (j < piece.end && why[j] == why[i]) ++j;
    const std::string r = why[i];
    nlohmann::json detail;
    auto max_of = [&](auto value) {
      float m = 0;
      for (int k = i; k < j; ++k) m = std::max(m, value(k));
      return m;
    };
    if (r == reason::kProfile) {
      detail = {{"max_abs_yaw", max_of([&](int k) { return std::abs(track[k].yaw); })}, {"limit", cfg.max_yaw}};
    } else if (r == reason::kCameraMotion) {
      detail = {{"max_camera_motion", max_of([&](int k) { return cam[k]; })}, {"limit", cfg.max_camera_motion}};
    } else if (r == reason::kFaceMotion) {
      detail = {{"max_face_motion", max_of([&](int k) { return face[k]; })}, {"limit", cfg.max_face_motion}};
    } else {
      detail = {{"frames", j - i}, {"min_bad_run", cfg.min_faces_bad_run}};
    }
    out.push_back({i, j, r, std::move(detail)});
    i = j;
  }
}

// Splits a good run so the face size varies by at most max_face_scale_change
// inside each part (a slow zoom or lean-in is kept, but as separate segments).
std::vector<Range> split_by_scale(const std::vector<FrameObs>& track, Range run, double max_change) {
  std::vector<Range> parts;
  int start = run.begin;
  float lo = 0, hi = 0;
  for (int i = run.begin; i < run.end; ++i) {
    const float s = box_size(track[i].face_box);
    if (!(s > 0)) continue;
    const float nlo = lo > 0 ? std::min(lo, s) : s, nhi = std::max(hi, s);
    if (nhi / nlo - 1 > max_change && i > start) {
      parts.push_back({start, i});
      start = i;
      lo = hi = s;
    } else {
      lo = nlo;
      hi = nhi;
    }
  }
  parts.push_back({start, run.end});
  return parts;
}

double mean_finite(const std::vector<float>& v, Range r) {
  double sum = 0;
  int n = 0;
  for (int i = r.begin; i < r.end; ++i) {
    if (std::isfinite(v[i])) {
      sum += v[i];
      ++n;
    }
  }
  return n ? sum / n : 0.0;
}

// The per-run rules, in order: length, voice, lip-audio. Short runs are
// reported as such before their (meaningless) correlation is looked at.
void judge_run(Range run, const std::vector<FrameObs>& track, const std::vector<float>& audio_rms,
               const std::vector<float>& cam_raw, const std::vector<float>& face_raw, const CleanConfig& cfg,
               CleanResult& out) {
  const int len = run.end - run.begin;
  const double seconds = len / cfg.fps;
  if (len < std::ceil(cfg.min_segment_s * cfg.fps - 1e-9)) {
    out.rejected.push_back(
        {run.begin, run.end, reason::kTooShort, {{"seconds", seconds}, {"min_seconds", cfg.min_segment_s}}});
    return;
  }
  int voiced = 0;
  for (int i = run.begin; i < run.end; ++i) voiced += audio_rms[i] > cfg.silence_rms;
  const double voice_ratio = double(voiced) / len;
  if (voice_ratio < cfg.min_voice_ratio) {
    out.rejected.push_back(
        {run.begin, run.end, reason::kSilent, {{"voice_ratio", voice_ratio}, {"limit", cfg.min_voice_ratio}}});
    return;
  }
  std::vector<float> mouth(track.size(), 0.f);
  for (int i = run.begin; i < run.end; ++i) mouth[i] = track[i].mouth_open;
  double mean_mouth = 0, var_mouth = 0;
  for (int i = run.begin; i < run.end; ++i) mean_mouth += mouth[i];
  mean_mouth /= len;
  for (int i = run.begin; i < run.end; ++i) var_mouth += (mouth[i] - mean_mouth) * (mouth[i] - mean_mouth);
  const double mouth_std = std::sqrt(var_mouth / len);
  if (mouth_std < cfg.min_mouth_std) {
    out.rejected.push_back({run.begin, run.end, reason::kLipAudio,
                            {{"mouth_std", mouth_std}, {"limit_mouth_std", cfg.min_mouth_std}}});
    return;
  }
  const detail::LaggedCorr lc = detail::best_lagged_corr(mouth, audio_rms, run.begin, run.end, cfg.lip_audio_max_lag);
  if (lc.corr < cfg.min_lip_audio_corr) {
    out.rejected.push_back({run.begin, run.end, reason::kLipAudio,
                            {{"corr", lc.corr}, {"lag", lc.lag}, {"limit", cfg.min_lip_audio_corr}}});
    return;
  }
  double yaw = 0, abs_yaw = 0;
  float lo = std::numeric_limits<float>::max(), hi = 0;
  for (int i = run.begin; i < run.end; ++i) {
    yaw += track[i].yaw;
    abs_yaw += std::abs(track[i].yaw);
    const float s = box_size(track[i].face_box);
    if (s > 0) {
      lo = std::min(lo, s);
      hi = std::max(hi, s);
    }
  }
  Segment seg;
  seg.begin = run.begin;
  seg.end = run.end;
  seg.scores = {{"seconds", seconds},
                {"mean_yaw", yaw / len},
                {"mean_abs_yaw", abs_yaw / len},
                {"lip_audio_corr", lc.corr},
                {"lip_audio_lag", lc.lag},
                {"mouth_std", mouth_std},
                {"voice_ratio", voice_ratio},
                {"camera_motion", mean_finite(cam_raw, run)},
                {"face_motion", mean_finite(face_raw, run)},
                {"face_scale_change", hi > 0 ? double(hi / lo) - 1.0 : 0.0}};
  out.kept.push_back(std::move(seg));
}

}  // namespace

CleanResult clean_video(const std::vector<FrameObs>& frames, const FrameStats& motion,
                        const std::vector<float>& audio_rms, int audio_frames, const CleanConfig& cfg) {
  validate(cfg, "clean_video");
  const int n = static_cast<int>(frames.size());
  const bool measured = !motion.scene_dist.empty() || !motion.camera_motion.empty();
  if (measured && (motion.scene_dist.size() != frames.size() || motion.camera_motion.size() != frames.size())) {
    fail_at("clean_video", "motion stats cover {} / {} frames, the video has {}", motion.scene_dist.size(),
            motion.camera_motion.size(), n);
  }
  if (audio_rms.size() != frames.size()) {
    fail_at("clean_video", "audio envelope has {} frames, the video has {}", audio_rms.size(), n);
  }

  CleanResult res;
  if (std::abs(static_cast<long long>(audio_frames) - n) > cfg.max_av_frame_diff) {
    res.rejected.push_back({0, n, reason::kAvMismatch,
                            {{"video_frames", n}, {"audio_frames", audio_frames}, {"limit", cfg.max_av_frame_diff}}});
    return res;
  }

  std::vector<FrameObs> track(frames.size());
  std::vector<float> cam_raw(frames.size(), kNaN);
  for (const Range piece : scene_pieces(motion.scene_dist, n, cfg, res.rejected)) {
    const std::vector<const char*> face_why = fill_face_dropouts(frames, piece, cfg, track);
    // The first frame's motion is measured across the cut (or is undefined).
    for (int i = piece.begin + 1; measured && i < piece.end; ++i) cam_raw[i] = motion.camera_motion[i];
    const std::vector<float> face_raw = face_speed(track, face_why, piece);
    // Sliding medians: a single jittery measurement does not cut a segment, a
    // sustained motion of >= window/2 + 1 frames does.
    const std::vector<float> cam = detail::window_median(cam_raw, piece.begin, piece.end, cfg.motion_window);
    const std::vector<float> face = detail::window_median(face_raw, piece.begin, piece.end, cfg.motion_window);

    // One reason per frame, most fundamental first: without a single face the
    // pose and face motion mean nothing.
    std::vector<const char*> why(frames.size(), nullptr);
    for (int i = piece.begin; i < piece.end; ++i) {
      if (face_why[i]) {
        why[i] = face_why[i];
      } else if (!(std::abs(track[i].yaw) <= cfg.max_yaw)) {  // NaN yaw cannot be shown frontal
        why[i] = reason::kProfile;
      } else if (cam[i] > cfg.max_camera_motion) {
        why[i] = reason::kCameraMotion;
      } else if (face[i] > cfg.max_face_motion) {
        why[i] = reason::kFaceMotion;
      }
    }
    add_frame_rejections(why, piece, track, cam, face, cfg, res.rejected);

    int i = piece.begin;
    while (i < piece.end) {
      if (why[i]) {
        ++i;
        continue;
      }
      int j = i;
      while (j < piece.end && !why[j]) ++j;
      for (const Range part : split_by_scale(track, {i, j}, cfg.max_face_scale_change)) {
        judge_run(part, track, audio_rms, cam_raw, face_raw, cfg, res);
      }
      i = j;
    }
  }
  std::stable_sort(res.rejected.begin(), res.rejected.end(), [](const Rejection& a, const Rejection& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  return res;
}

nlohmann::json result_to_json(const CleanResult& r) {
  nlohmann::json kept = nlohmann::json::array(), rejected = nlohmann::json::array();
  for (const Segment& s : r.kept) kept.push_back({{"begin", s.begin}, {"end", s.end}, {"scores", s.scores}});
  for (const Rejection& x : r.rejected) {
    rejected.push_back({{"begin", x.begin}, {"end", x.end}, {"reason", x.reason}, {"detail", x.detail}});
  }
  return {{"kept", kept}, {"rejected", rejected}};
}

}  // namespace hallo::clean
