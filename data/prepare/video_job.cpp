#include "data/prepare/video_job.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/face/embedding.h"
#include "data/face/face_tracker.h"
#include "data/face/reference_crop.h"
#include "media/probe.h"
#include "media/video_reader.h"
#include "model/io/hf_config.h"
#include "model/io/state_dict.h"
#include "model/nn/loader.h"
#include "model/vae/autoencoder_kl.h"

namespace hallo::data {

namespace fs = std::filesystem;

std::string video_key_for(const fs::path& video) {
  std::string k = video.stem().string();
  for (auto& ch : k)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) ch = '_';
  return k.empty() ? "video" : k;
}

namespace {

constexpr int kEmbDim = 512;

// Per analysis frame: landmarks of the largest face, if any.
struct FrameFace {
  bool has = false;
  face::Landmarks68 lm{};  // source-resolution pixels
};

// Errors about the input file (hallo_media's reasons) become recorded rejections with a
// short reason; "" for anything else (a model or program failure), which must propagate.
std::string media_reason(const std::string& video, const std::string& msg) {
  if (msg.rfind(video + ":", 0) != 0) return "";
  if (msg.find("no audio stream") != std::string::npos) return "no audio stream";
  if (msg.find("no video stream") != std::string::npos) return "no video stream";
  if (msg.find("no such file") != std::string::npos) return "missing file";
  if (msg.find("empty file") != std::string::npos) return "empty file";
  if (msg.find("truncated or corrupt") != std::string::npos) return "truncated";
  if (msg.find("not a media file") != std::string::npos || msg.find("corrupt") != std::string::npos ||
      msg.find("is a directory") != std::string::npos)
    return "unreadable";  // not media at all, or cut before the header/index was complete
  return "";
}

struct OpenClip {
  int index = 0, seg = 0, begin = 0, end = 0;
  cv::Rect crop;
  ClipRecord rec;
};

}  // namespace

struct PrepareWorker::Impl {
  PrepareConfig cfg;
  face::FaceAnalyzer analyzer;
  std::unique_ptr<face::FaceEmbedder> embedder;
  std::unique_ptr<audio::AudioPipeline> audio;
  model::AutoencoderKL vae{nullptr};

  explicit Impl(const PrepareConfig& c) : cfg(c), analyzer(c.face) {
    if (!cfg.arcface_onnx.empty()) embedder = std::make_unique<face::FaceEmbedder>(cfg.arcface_onnx);
    audio = std::make_unique<audio::AudioPipeline>(cfg.audio);
    if (!cfg.vae.empty()) load_vae();
  }

  void load_vae() {
    fs::path w = cfg.vae, cfg_path = cfg.vae_config;
    if (cfg_path.empty()) cfg_path = (fs::is_directory(w) ? w : w.parent_path()) / "config.json";
    if (!fs::exists(w)) fail_at(w.string(), "no such VAE checkpoint");
    vae = model::AutoencoderKL(model::VaeConfig::from_json(io::load_json_file(cfg_path.string()), cfg_path.string()));
    nn::LoadOptions lo;
    lo.rename = model::vae_translate_legacy_key;
    auto rep = nn::load_weights(*vae, io::StateDict::open(w), lo);
    vae->eval();
  }

  Result process(const fs::path& video, const std::string& key, const std::set<std::string>& skip,
                 const fs::path& spool_dir);
  void finish_clip(OpenClip& oc, const std::vector<FrameFace>& faces, double scale, const audio::AudioFeatures& feats,
                   const nlohmann::json& seg_scores, const std::string& source);
};

PrepareWorker::PrepareWorker(const PrepareConfig& cfg) : impl_(std::make_unique<Impl>(cfg)) {}
PrepareWorker::~PrepareWorker() = default;

PrepareWorker::Result PrepareWorker::process(const fs::path& video, const std::string& key,
                                             const std::set<std::string>& skip, const fs::path& spool_dir) {
  return impl_->process(video, key, skip, spool_dir);
}

PrepareWorker::Result PrepareWorker::Impl::process(const fs::path& video, const std::string& key,
                                                   const std::set<std::string>& skip, const fs::path& spool_dir) {
  at::NoGradGuard ng;
  Result r;
  r.video = video.string();
  auto reject = [&](const std::string& reason, const std::string& msg) {
    r.status = "rejected";
    r.reason = reason;
    r.error = msg;
    r.clips.reset();  // removes the spool file
    r.clip_ids.clear();
    return r;
  };
  media::MediaInfo info;
  try {
    info = media::probe(video);
  } catch (const Error& e) {
    const auto why = media_reason(r.video, e.what());
    if (why.empty()) throw;
    return reject(why, e.what());
  }
  if (!info.has_video) return reject("no video stream", r.video + ": no video stream");
  if (!info.has_audio) return reject("no audio stream", r.video + ": no audio stream");

  // --- pass 1: analysis on frames no larger than analysis_max_side ---
  const int sw = info.display_width(), sh = info.display_height();
  media::VideoDecodeOptions ao;
  ao.fps = cfg.fps;
  if (std::max(sw, sh) > cfg.analysis_max_side) (sw >= sh ? ao.out_width : ao.out_height) = cfg.analysis_max_side;
  std::vector<clean::FrameObs> obs;
  std::vector<FrameFace> faces;
  clean::MotionAnalyzer motion(cfg.clean);
  double scale = 1.0;
  std::vector<float> wave;
  try {
    media::VideoReader rd(video, ao);
    scale = static_cast<double>(sw) / rd.out_width();
    face::FaceTracker tracker(analyzer, cfg.face.detect_every);
    auto take = [&](std::vector<face::TrackedFrame> done) {
      for (const auto& t : done) {
        clean::FrameObs ob;
        FrameFace ff;
        ob.num_faces = t.num_faces;
        if (t.num_faces > 0) {
          const auto& lm = t.face.lm;
          ob.face_box = face::face_box(lm);
          const auto pose = face::estimate_pose(lm, t.rgb.size());
          ob.yaw = pose.yaw;
          ob.pitch = pose.pitch;
          ob.roll = pose.roll;
          ob.mouth_open = face::mouth_opening(lm);
          ff.has = true;
          for (size_t i = 0; i < lm.size(); ++i) ff.lm[i] = lm[i] * static_cast<float>(scale);
        }
        motion.push(t.rgb, ob.face_box);
        obs.push_back(ob);
        faces.push_back(ff);
      }
    };
    media::RgbFrame fr;
    while (rd.next(fr)) take(tracker.push(cv::Mat(fr.height, fr.width, CV_8UC3, fr.rgb.data())));
    take(tracker.finish());
    wave = audio->load_speech(video);
  } catch (const Error& e) {
    const auto why = media_reason(r.video, e.what());
    if (why.empty()) throw;  // e.g. the vocal separator model failed: not this video's fault
    return reject(why, e.what());
  }
  r.seconds = obs.size() / cfg.fps;
  if (obs.empty()) return reject("unreadable", r.video + ": no decodable video frames");
  if (wave.empty()) return reject("no audio stream", r.video + ": audio decoded to zero samples");

  // --- cleaning ---
  const auto rms = clean::audio_rms_per_frame(wave, cfg.sample_rate, cfg.fps, obs.size());
  const int audio_frames = clean::audio_frame_count(wave.size(), cfg.sample_rate, cfg.fps);
  const auto cleaned = clean::clean_video(obs, motion.stats(), rms, audio_frames, cfg.clean);
  std::map<std::string, int> frames_by_reason;
  for (const auto& rej : cleaned.rejected) {
    r.rejections.push_back({{"begin", rej.begin}, {"end", rej.end}, {"reason", rej.reason}, {"detail", rej.detail}});
    frames_by_reason[rej.reason] += rej.end - rej.begin;
  }
  const auto ranges = clean::cut_clips(cleaned.kept, cfg.clip_length, cfg.clip_stride, cfg.min_clip_length);
  // Kept frames no clip holds (a remainder shorter than min_clip_length) are rejected
  // footage too, so kept + rejected = the video's frames.
  std::vector<char> in_clip(obs.size(), 0);
  for (const auto& [b, e] : ranges) std::fill(in_clip.begin() + b, in_clip.begin() + e, 1);
  for (const auto& seg : cleaned.kept) {
    for (int f = seg.begin; f < seg.end;) {
      if (in_clip[static_cast<size_t>(f)]) {
        ++f;
        continue;
      }
      int e = f;
      while (e < seg.end && !in_clip[static_cast<size_t>(e)]) ++e;
      r.rejections.push_back({{"begin", f}, {"end", e}, {"reason", clean::reason::kTooShort},
                              {"detail", {{"frames", e - f}, {"min_clip_length", cfg.min_clip_length}}}});
      frames_by_reason[clean::reason::kTooShort] += e - f;
      f = e;
    }
  }
  if (ranges.empty()) {
    // The whole video is rejected for the reason covering most frames.
    std::string why = clean::reason::kTooShort;
    int most = 0;
    for (const auto& [k, n] : frames_by_reason)
      if (n > most) most = n, why = k;
    auto rej = r.rejections;
    reject(why, "");
    r.rejections = rej;
    return r;
  }
  // Kept = what the shards hold (overlapping clips count once).
  r.kept_seconds = static_cast<double>(std::count(in_clip.begin(), in_clip.end(), 1)) / cfg.fps;

  // --- audio features once per video, cut per clip ---
  const auto feats = audio->from_samples(wave);

  // --- pass 2: full-resolution decode, clips built as their frames stream by ---
  std::vector<OpenClip> pending;
  for (size_t i = 0; i < ranges.size(); ++i) {
    OpenClip oc;
    oc.index = static_cast<int>(i);
    oc.begin = ranges[i].first;
    oc.end = ranges[i].second;
    for (size_t s = 0; s < cleaned.kept.size(); ++s)
      if (cleaned.kept[s].begin <= oc.begin && oc.end <= cleaned.kept[s].end) oc.seg = static_cast<int>(s);
    oc.rec.id = fmt::format("{}_s{:03d}_c{:03d}", key, oc.seg, oc.index);
    r.clip_ids.push_back(oc.rec.id);
    if (skip.count(oc.rec.id)) continue;
    std::vector<cv::Rect2f> boxes;
    for (int f = oc.begin; f < oc.end; ++f)
      if (faces[f].has) boxes.push_back(face::face_box(faces[f].lm));
    if (boxes.empty()) continue;  // cannot happen for kept segments; guarded anyway
    oc.crop = face::crop_around(face::union_box(boxes), cfg.crop_scale, sw, sh, 1, 1);  // shared with animate
    pending.push_back(std::move(oc));
  }
  if (!pending.empty()) {
    media::VideoDecodeOptions fo;
    fo.fps = cfg.fps;
    media::VideoReader rd(video, fo);
    media::RgbFrame fr;
    int idx = 0;
    size_t next_done = 0;
    while (next_done < pending.size() && rd.next(fr)) {
      cv::Mat rgb(fr.height, fr.width, CV_8UC3, fr.rgb.data());
      for (size_t k = next_done; k < pending.size() && pending[k].begin <= idx; ++k) {
        auto& oc = pending[k];
        if (idx >= oc.end) continue;
        cv::Mat out;
        cv::resize(rgb(oc.crop & cv::Rect(0, 0, fr.width, fr.height)), out, cv::Size(cfg.resolution, cfg.resolution), 0, 0,
                   cv::INTER_AREA);
        oc.rec.frames.push_back(out);
      }
      ++idx;
      while (next_done < pending.size() && idx >= pending[next_done].end) {
        auto& oc = pending[next_done];
        const auto& scores = cleaned.kept[oc.seg].scores;
        finish_clip(oc, faces, scale, feats, scores, r.video);
        // Encode now (JPEG, float16, checksums) and park the bytes on disk until the in-order commit.
        if (!r.clips) r.clips = std::make_shared<ClipSpool>(spool_dir / (key + ClipSpool::kSuffix));
        r.clips->push(ShardWriter::encode(oc.rec, cfg.shards));
        oc.rec = ClipRecord{};
        ++next_done;
      }
    }
    if (next_done < pending.size())
      fail_at(r.video, "second decode ended at frame {} before clip {} (frames {}..{}) was complete", idx,
              pending[next_done].rec.id, pending[next_done].begin, pending[next_done].end);
  }
  r.status = "accepted";
  return r;
}

void PrepareWorker::Impl::finish_clip(OpenClip& oc, const std::vector<FrameFace>& faces, double scale,
                                      const audio::AudioFeatures& feats, const nlohmann::json& seg_scores,
                                      const std::string& source) {
  auto& c = oc.rec;
  const int n = oc.end - oc.begin, res = cfg.resolution;
  c.source = source;
  c.t_start = oc.begin / cfg.fps;
  c.t_end = oc.end / cfg.fps;
  c.fps = cfg.fps;
  c.num_frames = n;
  c.height = c.width = res;
  // Landmarks in clip pixels; frames without a detection reuse the nearest earlier one
  // (cleaning only keeps short dropouts), else the next one.
  const float k = static_cast<float>(res) / oc.crop.width;
  std::vector<face::Landmarks68> lms(n);
  int last = -1, interpolated = 0;
  for (int f = 0; f < n; ++f) {
    int src = oc.begin + f;
    if (!faces[src].has) {
      ++interpolated;
      if (last >= 0) {
        src = last;
      } else {
        for (int g = src; g < oc.end; ++g)
          if (faces[g].has) { src = g; break; }
      }
    } else {
      last = src;
    }
    for (size_t i = 0; i < 68; ++i)
      lms[f][i] = (faces[src].lm[i] - cv::Point2f(static_cast<float>(oc.crop.x), static_cast<float>(oc.crop.y))) * k;
  }
  std::vector<cv::Rect2f> fboxes, lboxes;
  c.face_boxes.reserve(n * 4);
  c.landmarks.reserve(n * 136);
  for (const auto& lm : lms) {
    const auto fb = face::face_box(lm);
    fboxes.push_back(fb);
    lboxes.push_back(face::lip_box(lm));
    c.face_boxes.insert(c.face_boxes.end(), {fb.x, fb.y, fb.x + fb.width, fb.y + fb.height});
    for (const auto& p : lm) c.landmarks.insert(c.landmarks.end(), {p.x, p.y});
  }
  const auto masks = face::make_masks(face::union_box(fboxes), face::union_box(lboxes), cv::Size(res, res), cfg.masks);
  c.face_region = masks.face_region;
  c.lip_masks = masks.lip;
  c.face_masks = masks.face;
  c.pose_masks = masks.pose;

  // Face embedding from the first frame with a real detection (upstream: first frame with a face).
  c.face_emb.assign(kEmbDim, 0.f);
  c.face_emb_valid = false;
  if (embedder) {
    for (int f = 0; f < n; ++f)
      if (faces[oc.begin + f].has) {
        c.face_emb = embedder->embed(c.frames[f], lms[f]);
        c.face_emb_valid = true;
        break;
      }
  }

  // Audio features rows [begin, end); audio may be up to max_av_frame_diff frames short.
  const auto& emb = feats.emb;  // [N, L, D]
  const int64_t N = emb.size(0), L = emb.size(1), D = emb.size(2);
  auto idx = at::arange(oc.begin, oc.end, at::kLong).clamp_max(N - 1);
  auto slice = emb.index_select(0, idx).contiguous();
  c.audio.assign(slice.data_ptr<float>(), slice.data_ptr<float>() + slice.numel());
  c.audio_layers = static_cast<int>(L);
  c.audio_dim = static_cast<int>(D);
  c.audio_extractor = feats.extractor_id;

  if (vae) {
    std::vector<at::Tensor> means, stds;
    for (int f0 = 0; f0 < n; f0 += 4) {
      std::vector<at::Tensor> batch;
      for (int f = f0; f < std::min(n, f0 + 4); ++f) {
        auto t = at::from_blob(c.frames[f].data, {res, res, 3}, at::kByte);
        batch.push_back(t.permute({2, 0, 1}).to(at::kFloat).div(127.5).sub(1.0));  // [3, H, W] in [-1, 1]
      }
      auto post = vae->encode(at::stack(batch));  // [b, C, H/8, W/8]
      means.push_back(post.mean);
      stds.push_back(post.std());
    }
    auto m = at::cat(means).contiguous(), s = at::cat(stds).contiguous();
    c.latent_channels = static_cast<int>(m.size(1));
    c.latent_mean.assign(m.data_ptr<float>(), m.data_ptr<float>() + m.numel());
    c.latent_std.assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  }

  c.meta = {{"segment", oc.seg},
            {"clip", oc.index},
            {"frames", {oc.begin, oc.end}},
            {"crop_xywh", {oc.crop.x, oc.crop.y, oc.crop.width, oc.crop.height}},
            {"analysis_scale", scale},
            {"interpolated_landmark_frames", interpolated},
            {"audio_frames_unpadded", feats.audio_frames},
            {"scores", seg_scores}};
}

}  // namespace hallo::data
