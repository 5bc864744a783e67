#include "eval/evaluator.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/progress.h"
#include "data/face/embedding.h"
#include "eval/face_models.h"
#include "eval/face_track.h"
#include "eval/frechet.h"
#include "eval/fvd_protocol.h"
#include "eval/image_metrics.h"
#include "eval/lipsync.h"
#include "eval/nets/i3d.h"
#include "eval/nets/inception_fid.h"
#include "eval/nets/syncnet.h"
#include "eval/stats_cache.h"
#include "eval/sync_video.h"
#include "media/audio_reader.h"
#include "media/video_reader.h"

namespace hallo::eval {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kFps = 25.0;       // SyncNet and the papers' protocols work at 25 fps
constexpr int kSampleRate = 16000;  // SyncNet's MFCC rate
constexpr double kPsnrCap = 100.0;  // dB for identical frames (DisCo's choice), so one frame cannot make a mean inf

// What each metric needs; every list the evaluator keeps derives from this table.
struct MetricSpec {
  std::string name;
  bool real = false;    // needs --real
  bool paired = false;  // needs the real video of the same name
  bool set = false;     // a Fréchet distance over the sets (else per-video, averaged)
  bool faces = false;   // uses the dlib face track
  bool audio = false;   // uses the speech
  std::vector<std::string> files;  // accepted weight file names (first match wins); empty: weight-free
  std::string expected, source;    // for the message when none is there
  std::vector<std::pair<std::string, std::string>> columns;  // per-video JSON keys and Markdown headers
};

const std::vector<MetricSpec>& specs() {
  static const std::vector<MetricSpec> s = {
      {"fid", true, false, true, false, false,
       {"pt_inception-2015-12-05-6726825d.pth", "pt_inception*.pth", "fid_inception.safetensors"},
       "pt_inception-2015-12-05-6726825d.pth",
       "pytorch-fid: https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
       "pt_inception-2015-12-05-6726825d.pth",
       {}},
      {"fvd", true, false, true, false, false,
       {"i3d_pretrained_400.pt", "i3d_torchscript.pt", "rgb_imagenet.pt", "i3d.safetensors"},
       "i3d_pretrained_400.pt (VideoGPT) or i3d_torchscript.pt (StyleGAN-V)",
       "VideoGPT's videogpt/download.py (load_i3d_pretrained) or StyleGAN-V's "
       "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt",
       {}},
      {"efid", true, false, true, true, false, {"expression.onnx"},
       "expression.onnx (a face crop -> expression coefficients ONNX, e.g. an exported Deep3DFaceRecon R-Net)",
       "export your expression model to ONNX; eval/README.md describes its input",
       {}},
      {"sync", false, false, false, true, true, {"syncnet_v2.model", "syncnet.safetensors"}, "syncnet_v2.model",
       "syncnet_python's download_model.sh: http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
       {{"sync_c", "Sync-C"}, {"sync_d", "Sync-D"}, {"av_offset", "offset"}}},
      {"lipsync", false, false, false, true, true, {}, "", "", {{"lipsync_corr", "lip-sync"}}},
      {"lmd", true, true, false, true, false, {}, "", "", {{"lmd_mouth", "LMD mouth"}, {"lmd_face", "LMD face"}}},
      {"psnr", true, true, false, false, false, {}, "", "", {{"psnr", "PSNR"}}},
      {"ssim", true, true, false, false, false, {}, "", "", {{"ssim", "SSIM"}}},
      {"csim", true, true, false, true, false,
       {"arcface.onnx", "glintr100.onnx", "w600k_r50.onnx", "face_analysis/models/glintr100.onnx"},
       "arcface.onnx (any insightface ArcFace ONNX, e.g. glintr100.onnx)",
       "the insightface model zoo (antelopev2 glintr100.onnx, buffalo_l w600k_r50.onnx); Hallo ships glintr100.onnx "
       "in pretrained_models/face_analysis/models",
       {{"csim", "CSIM"}}},
  };
  return s;
}

const MetricSpec& spec(const std::string& m) {
  for (const auto& s : specs())
    if (s.name == m) return s;
  fail("unknown metric '{}'; known: {}", m, fmt::join(known_metrics(), ", "));
}

bool glob_match(const std::string& pat, const std::string& name) {
  const auto star = pat.find('*');
  if (star == std::string::npos) return pat == name;
  const std::string pre = pat.substr(0, star), suf = pat.substr(star + 1);
  return name.size() >= pre.size() + suf.size() && name.compare(0, pre.size(), pre) == 0 &&
         name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
}

// The weights file of `s` in `dir`, or the reason it is unavailable.
std::optional<fs::path> locate_weights(const MetricSpec& s, const fs::path& dir, std::string* reason) {
  if (s.files.empty()) return fs::path();  // weight-free
  if (dir.empty()) {
    *reason = fmt::format("needs --weights-dir holding {} (from {})", s.expected, s.source);
    return std::nullopt;
  }
  for (const auto& pat : s.files) {
    if (pat.find('*') == std::string::npos) {
      if (fs::is_regular_file(dir / pat)) return dir / pat;
      continue;
    }
    std::vector<fs::path> hits;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.is_regular_file() && glob_match(pat, e.path().filename().string())) hits.push_back(e.path());
    std::sort(hits.begin(), hits.end());
    if (!hits.empty()) return hits.front();
  }
  *reason = fmt::format("weights not found: expected {} in {} (from {})", s.expected, dir.string(), s.source);
  return std::nullopt;
}

// dlib's landmark model: --weights-dir first, then the Debian package's path.
std::optional<fs::path> locate_landmark_model(const fs::path& dir, std::string* reason) {
  const std::string name = "shape_predictor_68_face_landmarks.dat";
  if (!dir.empty() && fs::is_regular_file(dir / name)) return dir / name;
  const fs::path system = face::FaceAnalyzerConfig{}.shape_predictor;
  if (fs::is_regular_file(system)) return system;
  *reason = fmt::format("face metrics need dlib's {} in --weights-dir or at {} (Debian package libdlib-data, or "
                        "http://dlib.net/files/{}.bz2)",
                        name, system.string(), name);
  return std::nullopt;
}

// ---- decoded videos ----------------------------------------------------------------------

struct Video {
  fs::path path;
  at::Tensor u8;                // [N,H,W,3] RGB
  std::vector<cv::Mat> frames;  // views into u8
  int width = 0, height = 0;
  std::optional<FaceTrack> track;
  std::string track_error;  // a failed track fails every face metric without re-running dlib
};

Video decode(const fs::path& path) {
  media::VideoDecodeOptions vo;
  vo.fps = kFps;
  const auto fr = media::read_video(path, vo);
  if (fr.empty()) fail_at(path.string(), "has no video frames");
  Video v;
  v.path = path;
  v.width = fr[0].width;
  v.height = fr[0].height;
  const int64_t n = static_cast<int64_t>(fr.size()), bytes = int64_t{v.width} * v.height * 3;
  v.u8 = at::empty({n, v.height, v.width, 3}, at::kByte);
  uint8_t* dst = v.u8.data_ptr<uint8_t>();
  for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * bytes, fr[i].rgb.data(), bytes);
  for (int64_t i = 0; i < n; ++i) v.frames.emplace_back(v.height, v.width, CV_8UC3, dst + i * bytes);
  return v;
}

const FaceTrack& track_of(Video& v, face::FaceAnalyzer& faces) {
  if (!v.track_error.empty()) throw Error(v.track_error);
  if (!v.track) {
    try {
      v.track = track_face(v.frames, faces, kDetectMinSide, v.path.string());
    } catch (const Error& e) {
      v.track_error = e.what();
      throw;
    }
  }
  return *v.track;
}

// Generated frames at the real video's size (area when shrinking, bicubic when enlarging).
at::Tensor resized_like(const Video& g, const Video& r, int64_t n) {
  if (g.width == r.width && g.height == r.height) return g.u8.slice(0, 0, n);
  at::Tensor out = at::empty({n, r.height, r.width, 3}, at::kByte);
  const int interp = r.width < g.width ? cv::INTER_AREA : cv::INTER_CUBIC;
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat dst(r.height, r.width, CV_8UC3, out[i].data_ptr<uint8_t>());
    cv::resize(g.frames[i], dst, dst.size(), 0, 0, interp);
  }
  return out;
}

std::vector<float> read_audio_for(const fs::path& video, const std::string& audio_from) {
  fs::path src = video;
  if (audio_from != "generated" && !audio_from.empty()) {
    const fs::path from(audio_from);
    if (fs::is_directory(from)) {
      src.clear();
      for (const char* ext : {".wav", ".mp4", ".m4a", ".flac", ".mp3"})
        if (fs::exists(from / (video.stem().string() + ext))) { src = from / (video.stem().string() + ext); break; }
      if (src.empty())
        fail_at(from.string(), "no audio named {}.wav/.mp4/.m4a/.flac/.mp3 for {}", video.stem().string(), video.string());
    } else {
      src = from;
    }
  }
  return media::read_audio(src, {kSampleRate});
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Seconds spent per metric (the report's timing block).
struct Timer {
  explicit Timer(double* acc) : acc_(acc), t0_(std::chrono::steady_clock::now()) {}
  ~Timer() { *acc_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  double* acc_;
  std::chrono::steady_clock::time_point t0_;
};

// The state of one evaluation: options, what is available, the networks, collected features.
struct Run {
  const EvalOptions& o;
  json report;
  std::set<std::string> want;
  std::map<std::string, fs::path> weights;
  nets::FidInceptionV3 fid{nullptr};
  std::optional<nets::FvdDetector> fvd;
  FvdProtocol fvd_protocol;
  nets::SyncNet sync{nullptr};
  std::optional<face::FaceEmbedder> arcface;
  std::optional<ExpressionModel> expression;
  std::optional<face::FaceAnalyzer> faces;
  std::map<std::string, std::vector<at::Tensor>> gen_feat, real_feat;
  std::map<std::string, std::string> real_failed;  // set metric -> why its real side is incomplete
  std::map<std::string, GaussianStats> real_stats;
  std::map<std::string, double> seconds;

  explicit Run(const EvalOptions& opts) : o(opts) {}

  bool on(const std::string& m) const { return want.count(m) != 0; }

  void error(const std::string& video, const std::string& what, const std::string& msg) {
    report["errors"].push_back({{"video", video}, {"metric", what}, {"error", msg}});
    spdlog::warn("{}: {}: {}", video.empty() ? std::string("set") : video, what, msg);
  }
  void unavailable(const std::string& m, const std::string& why) {
    report["unavailable"][m] = why;
    want.erase(m);
    spdlog::warn("{}: unavailable: {}", m, why);
  }

  // Runs fn; any failure (hallo, libtorch, OpenCV, memory) is recorded against (video, what).
  bool guard(const std::string& video, const std::string& what, const std::function<void()>& fn) {
    try {
      Timer t(&seconds[what]);
      fn();
      return true;
    } catch (const std::exception& e) {
      error(video, what, e.what());
      return false;
    }
  }

  // Setting string of a set metric (report + cache key).
  std::string settings(const std::string& m) const {
    if (m == "fid") return "fid:pytorch-fid-inception-v3:bilinear299:all-frames:fps25";
    if (m == "fvd") return fvd_protocol.settings() + (fvd && fvd->kind() == "torchscript" ? ":torchscript-own-bn-pool" : "");
    return expression->settings() + fmt::format(":facetrack-min{}:fps25", kDetectMinSide);
  }
};

void load_networks(Run& r) {
  auto load = [&](const std::string& m, const std::function<void()>& fn) {
    if (!r.on(m)) return;
    try {
      fn();
    } catch (const std::exception& e) {
      r.error("", m, fmt::format("cannot load {}: {}", r.weights[m].string(), e.what()));
      r.unavailable(m, "weights failed to load (see errors)");
    }
  };
  load("fid", [&] { r.fid = nets::load_fid_inception(r.weights["fid"]); });
  load("fvd", [&] {
    r.fvd = nets::FvdDetector::open(r.weights["fvd"], r.fvd_protocol.i3d);
    r.report["settings"]["fvd_detector"] = r.fvd->kind();
    if (r.fvd->kind() == "torchscript")
      spdlog::warn("fvd: {} is TorchScript: its own BN eps and pooling apply; only the {} input preparation is ours",
                   r.weights["fvd"].string(), r.fvd_protocol.name);
  });
  load("sync", [&] { r.sync = nets::load_syncnet(r.weights["sync"]); });
  load("csim", [&] { r.arcface.emplace(r.weights["csim"].string()); });
  load("efid", [&] { r.expression.emplace(r.weights["efid"], r.o.efid_size, r.o.efid_begin, r.o.efid_end); });
}

// Features of a real video for the set metrics whose statistics are not cached.
void featurise_real(Run& r, Video& v) {
  const std::string where = v.path.string();
  auto pending = [&](const std::string& m) { return r.on(m) && !r.real_stats.count(m) && !r.real_failed.count(m); };
  auto add = [&](const std::string& m, const std::function<at::Tensor()>& fn) {
    if (!pending(m)) return;
    try {
      Timer t(&r.seconds[m]);
      r.real_feat[m].push_back(fn());
    } catch (const std::exception& e) {
      r.real_failed[m] = fmt::format("real video {}: {}", where, e.what());
      r.error(where, m, e.what());
    }
  };
  add("fid", [&] { return nets::fid_features(*r.fid, v.u8, r.o.batch); });
  add("fvd", [&] { return fvd_features(*r.fvd, v.u8, r.fvd_protocol, where); });
  add("efid", [&] { return r.expression->coeffs(v.frames, track_of(v, *r.faces)); });
}

// Every per-video metric of one generated video (and its paired real one).
void score_video(Run& r, Video& g, Video* real, json& row) {
  const std::string where = g.path.string();
  auto face = [&]() -> const FaceTrack& { return track_of(g, *r.faces); };
  if (r.on("fid")) r.guard(where, "fid", [&] { r.gen_feat["fid"].push_back(nets::fid_features(*r.fid, g.u8, r.o.batch)); });
  if (r.on("fvd")) r.guard(where, "fvd", [&] { r.gen_feat["fvd"].push_back(fvd_features(*r.fvd, g.u8, r.fvd_protocol, where)); });
  if (r.on("efid")) r.guard(where, "efid", [&] { r.gen_feat["efid"].push_back(r.expression->coeffs(g.frames, face())); });

  std::vector<float> audio;
  bool have_audio = false;
  if (r.on("sync") || r.on("lipsync")) {
    try {
      audio = read_audio_for(g.path, r.o.audio_from);
      have_audio = true;
    } catch (const std::exception& e) {
      for (const std::string m : {"sync", "lipsync"})
        if (r.on(m)) r.error(where, m, e.what());
    }
  }
  if (r.on("sync") && have_audio)
    r.guard(where, "sync", [&] {
      const at::Tensor crops = syncnet_face_crops(g.frames, s3fd_like_boxes(face()), where);
      const auto s = syncnet_evaluate(*r.sync, crops, audio_to_pcm16(audio), where);
      row["sync_c"] = num(s.offsets.conf);
      row["sync_d"] = num(s.offsets.min_dist);
      row["av_offset"] = s.offsets.offset;
    });
  if (r.on("lipsync") && have_audio)
    r.guard(where, "lipsync", [&] {
      LipSyncOptions lo;
      lo.max_lag = r.o.max_lag;
      const auto res = lipsync_score(mouth_openings(face()), audio, kFps, lo);
      row["lipsync_corr"] = num(res.corr);
      row["lipsync_lag"] = res.lag;
      row["face_detected_frames"] = face().hits;
    });

  const bool paired = r.on("psnr") || r.on("ssim") || r.on("lmd") || r.on("csim");
  if (!paired) return;
  if (!real) {
    for (const std::string m : {"psnr", "ssim", "lmd", "csim"})
      if (r.on(m)) r.error(where, m, "its real video could not be decoded");
    return;
  }
  const int64_t n = std::min(g.u8.size(0), real->u8.size(0));
  row["paired_frames"] = n;
  if (r.on("psnr") || r.on("ssim")) {
    at::Tensor gr, rr;
    if (r.guard(where, "resize", [&] { gr = resized_like(g, *real, n), rr = real->u8.slice(0, 0, n); })) {
      if (r.on("psnr")) r.guard(where, "psnr", [&] { row["psnr"] = num(psnr(gr, rr).clamp_max(kPsnrCap).mean().item<double>()); });
      if (r.on("ssim")) r.guard(where, "ssim", [&] { row["ssim"] = num(ssim(gr, rr).mean().item<double>()); });
    }
  }
  if (r.on("lmd"))
    r.guard(where, "lmd", [&] {
      const double sx = double(real->width) / g.width, sy = double(real->height) / g.height;
      const auto& tr = track_of(*real, *r.faces);
      row["lmd_mouth"] = num(landmark_distance(face(), tr, sx, sy, n, 48, 68));
      row["lmd_face"] = num(landmark_distance(face(), tr, sx, sy, n, 0, 68));
    });
  if (r.on("csim"))
    r.guard(where, "csim", [&] {
      const auto& tr = track_of(*real, *r.faces);
      row["csim"] = num(identity_similarity(*r.arcface, g.frames, face(), real->frames[0], tr.landmarks[0]));
    });
}

void set_distances(Run& r, StatsCache& cache, const std::map<std::string, std::string>& keys) {
  for (const auto& s : specs()) {
    const std::string& m = s.name;
    if (!s.set || !r.on(m)) continue;
    json& out = r.report["set"][m];
    out["settings"] = r.settings(m);
    try {
      if (r.gen_feat[m].empty()) fail("no generated video produced features");
      const auto gs = gaussian_stats(at::cat(r.gen_feat[m]), m + " of the generated set");
      if (!r.real_stats.count(m)) {
        if (r.real_failed.count(m)) fail("{} (the real set is incomplete; nothing cached)", r.real_failed[m]);
        if (r.real_feat[m].empty()) fail("no real video produced features");
        r.real_stats[m] = gaussian_stats(at::cat(r.real_feat[m]), m + " of the real set");
        if (cache.enabled() && keys.count(m)) {
          cache.put(m, keys.at(m), r.real_stats[m]);
          out["real_stats"] = "computed, cached to " + cache.path_for(m, keys.at(m)).string();
        } else {
          out["real_stats"] = "computed";
        }
      }
      const auto fd = frechet_distance(gs, r.real_stats[m]);
      out["value"] = num(fd.distance);
      out["eps_fallback"] = fd.eps_fallback;
      out["generated_samples"] = gs.n;
      out["real_samples"] = r.real_stats[m].n;
    } catch (const std::exception& e) {
      out["error"] = e.what();
      r.error("", m, e.what());
    }
  }
}

}  // namespace

const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> m = [] {
    std::vector<std::string> v;
    for (const auto& s : specs()) v.push_back(s.name);
    return v;
  }();
  return m;
}

bool needs_real(const std::string& metric) { return spec(metric).real; }

json evaluate(const std::vector<fs::path>& generated, const std::vector<fs::path>& real, const EvalOptions& o) {
  if (generated.empty()) fail("no generated videos to evaluate");
  Run r(o);
  for (const auto& m : o.metrics) r.want.insert(spec(m).name);  // throws naming an unknown metric
  r.fvd_protocol = make_fvd_protocol(o.fvd_protocol, o.fvd_bn_eps);
  torch::NoGradGuard no_grad;

  r.report = {{"settings",
               {{"metrics", o.metrics}, {"fps", kFps}, {"fvd_protocol", o.fvd_protocol}, {"audio_from", o.audio_from},
                {"lipsync_max_lag", o.max_lag}, {"psnr_cap_db", kPsnrCap}, {"weights_dir", o.weights_dir.string()}}},
              {"videos", json::array()}, {"set", json::object()}, {"unavailable", json::object()},
              {"errors", json::array()}, {"weights", json::object()}};

  // What can run: --real where needed, weight files, dlib's landmark model.
  std::string landmark_reason;
  const auto landmarks = locate_landmark_model(o.weights_dir, &landmark_reason);
  for (const auto& s : specs()) {
    if (!r.on(s.name)) continue;
    std::string reason;
    if (s.real && real.empty()) {
      r.unavailable(s.name, "needs --real (the ground-truth videos)");
    } else if (s.faces && !landmarks) {
      r.unavailable(s.name, landmark_reason);
    } else if (const auto w = locate_weights(s, o.weights_dir, &reason); !w) {
      r.unavailable(s.name, reason);
    } else if (!w->empty()) {
      r.weights[s.name] = *w;
      r.report["weights"][s.name] = w->string();
    }
  }
  load_networks(r);
  if (std::any_of(specs().begin(), specs().end(), [&](const MetricSpec& s) { return s.faces && r.on(s.name); })) {
    try {
      face::FaceAnalyzerConfig fc;
      fc.shape_predictor = landmarks->string();
      r.faces.emplace(fc);
    } catch (const std::exception& e) {
      for (const auto& s : specs())
        if (s.faces && r.on(s.name)) r.unavailable(s.name, e.what());
    }
  }

  // Real-set statistics from the cache when this set, these settings and weights were seen.
  StatsCache cache(o.cache_dir);
  std::map<std::string, std::string> keys;
  for (const auto& s : specs()) {
    if (!s.set || !r.on(s.name) || !cache.enabled()) continue;
    keys[s.name] = cache.key(s.name, r.settings(s.name), r.weights[s.name], real);
    if (auto st = cache.get(s.name, keys[s.name])) {
      r.real_stats[s.name] = *st;
      r.report["set"][s.name]["real_stats"] = "cache " + cache.path_for(s.name, keys[s.name]).string();
    }
  }
  bool real_features = false, paired = false;
  for (const auto& s : specs()) {
    if (!r.on(s.name)) continue;
    real_features |= s.set && !r.real_stats.count(s.name);
    paired |= s.paired;
  }

  std::map<std::string, fs::path> real_by_name;
  for (const auto& v : real) {
    const auto [it, fresh] = real_by_name.emplace(v.stem().string(), v);
    if (!fresh) fail_at(v.string(), "two real videos are named '{}' ({}); pairing is by name", v.stem().string(), it->second.string());
  }
  if (paired) {
    std::vector<std::string> unpaired;
    for (const auto& g : generated)
      if (!real_by_name.count(g.stem().string())) unpaired.push_back(g.filename().string());
    if (!unpaired.empty())
      fail("paired metrics (lmd/psnr/ssim/csim) need a real video with the same name for every generated one; "
           "no match for: {}",
           fmt::join(unpaired, ", "));
  }

  std::set<fs::path> real_done;
  size_t total = generated.size();
  std::set<std::string> gen_names;
  for (const auto& g : generated) gen_names.insert(g.stem().string());
  if (real_features)
    for (const auto& v : real)
      if (!paired || !gen_names.count(v.stem().string())) ++total;
  ProgressBar bar("eval", total, " videos");
  if (o.quiet) bar.disable();

  auto decode_real = [&](const fs::path& p) -> std::optional<Video> {
    std::optional<Video> v;
    const bool ok = r.guard(p.string(), "decode", [&] { v = decode(p); });
    if (!ok)
      for (const auto& s : specs())
        if (s.set && r.on(s.name) && !r.real_stats.count(s.name)) r.real_failed[s.name] = "real video " + p.string() + " could not be decoded";
    return v;
  };

  for (const auto& gpath : generated) {
    json row = {{"generated", gpath.string()}};
    std::optional<Video> g;
    if (r.guard(gpath.string(), "decode", [&] { g = decode(gpath); })) {
      row["frames"] = g->u8.size(0);
      row["size"] = {g->width, g->height};
      std::optional<Video> rv;
      const auto rit = real_by_name.find(gpath.stem().string());
      if (rit != real_by_name.end() && (paired || real_features)) {
        row["real"] = rit->second.string();
        rv = decode_real(rit->second);
        if (rv && !real_done.count(rv->path)) {
          featurise_real(r, *rv);
          real_done.insert(rv->path);
        }
      }
      score_video(r, *g, rv ? &*rv : nullptr, row);
    }
    r.report["videos"].push_back(row);
    bar.advance();
  }
  if (real_features)
    for (const auto& p : real) {
      if (real_done.count(p) || (paired && gen_names.count(p.stem().string()))) continue;
      if (auto v = decode_real(p)) featurise_real(r, *v);
      real_done.insert(p);
      bar.advance();
    }
  bar.finish();

  set_distances(r, cache, keys);

  // Means of the per-video metrics over the videos that produced them.
  json mean = json::object();
  for (const auto& s : specs())
    for (const auto& [k, header] : s.columns) {
      if (k == "av_offset") continue;
      double sum = 0;
      int cnt = 0;
      for (const auto& row : r.report["videos"])
        if (row.contains(k) && row[k].is_number()) sum += row[k].get<double>(), ++cnt;
      if (cnt) mean[k] = sum / cnt, mean[k + "_videos"] = cnt;
    }
  r.report["mean"] = mean;
  for (const auto& [m, t] : r.seconds) r.report["timing_s"][m] = t;
  return r.report;
}

std::string markdown_report(const json& rep) {
  std::vector<std::pair<std::string, std::string>> used;
  for (const auto& s : specs())
    for (const auto& c : s.columns)
      for (const auto& row : rep["videos"])
        if (row.contains(c.first)) { used.push_back(c); break; }
  auto cell = [](const json& v) {
    if (v.is_number_integer()) return fmt::format("{:+d}", v.get<int64_t>());
    if (v.is_number()) return fmt::format("{:.4g}", v.get<double>());
    return std::string("-");
  };
  std::string md;
  if (!used.empty()) {
    md += "| video | frames |";
    for (const auto& c : used) md += " " + c.second + " |";
    md += "\n|---|---|";
    for (size_t i = 0; i < used.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& row : rep["videos"]) {
      md += "| " + fs::path(row["generated"].get<std::string>()).filename().string() + " | " +
            (row.contains("frames") ? std::to_string(row["frames"].get<int64_t>()) : std::string("-")) + " |";
      for (const auto& c : used) md += " " + (row.contains(c.first) ? cell(row[c.first]) : std::string("-")) + " |";
      md += "\n";
    }
    md += "| **mean** | |";
    for (const auto& c : used) md += " " + (rep["mean"].contains(c.first) ? cell(rep["mean"][c.first]) : std::string("")) + " |";
    md += "\n";
  }
  static const std::map<std::string, std::string> title = {{"fid", "FID"}, {"fvd", "FVD"}, {"efid", "E-FID"}};
  for (const auto& [m, s] : rep["set"].items()) {
    const std::string t = title.count(m) ? title.at(m) : m;
    if (s.contains("value") && s["value"].is_number())
      md += fmt::format("\n**{}** {:.4f} ({} generated vs {} real samples{})", t, s["value"].get<double>(),
                        s["generated_samples"].get<int64_t>(), s["real_samples"].get<int64_t>(),
                        s.value("eps_fallback", false) ? ", eps fallback" : "");
    else if (s.contains("error"))
      md += fmt::format("\n**{}** failed: {}", t, s["error"].get<std::string>());
  }
  for (const auto& [m, why] : rep["unavailable"].items()) md += fmt::format("\n**{}** unavailable: {}", m, why.get<std::string>());
  if (!rep["errors"].empty()) md += fmt::format("\n\n{} error(s): see \"errors\" in the JSON report", rep["errors"].size());
  md += "\n";
  return md;
}

}  // namespace hallo::eval
