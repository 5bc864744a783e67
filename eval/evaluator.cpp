#include "eval/evaluator.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <opencv2/dnn.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/progress.h"
#include "data/face/embedding.h"
#include "eval/face_track.h"
#include "eval/frechet.h"
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

const std::vector<std::string>& known_metrics() {
  static const std::vector<std::string> m = {"fid", "fvd", "efid", "sync", "lipsync", "lmd", "psnr", "ssim", "csim"};
  return m;
}

bool needs_real(const std::string& m) { return m == "fid" || m == "fvd" || m == "efid" || m == "lmd" || m == "psnr" || m == "ssim" || m == "csim"; }

namespace {

constexpr double kFps = 25.0;       // SyncNet and the papers' protocols work at 25 fps
constexpr int kSampleRate = 16000;  // SyncNet's MFCC rate
constexpr int kFaceMinSide = 256;   // upscale small frames before dlib detection

// ---- weights ---------------------------------------------------------------------------

struct WeightSpec {
  std::vector<std::string> names;  // accepted file names in --weights-dir (first match wins)
  std::string expected, source;    // for the message when none is there
};

const std::map<std::string, WeightSpec>& weight_specs() {
  static const std::map<std::string, WeightSpec> s = {
      {"fid",
       {{"pt_inception-2015-12-05-6726825d.pth", "pt_inception*.pth", "fid_inception.safetensors"},
        "pt_inception-2015-12-05-6726825d.pth",
        "pytorch-fid: https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth"}},
      {"fvd",
       {{"i3d_pretrained_400.pt", "i3d_torchscript.pt", "rgb_imagenet.pt", "i3d.safetensors"},
        "i3d_pretrained_400.pt (VideoGPT) or i3d_torchscript.pt (StyleGAN-V)",
        "VideoGPT's videogpt/download.py (load_i3d_pretrained) or StyleGAN-V's "
        "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt"}},
      {"sync",
       {{"syncnet_v2.model", "syncnet.safetensors"},
        "syncnet_v2.model",
        "syncnet_python's download_model.sh: http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model"}},
      {"csim",
       {{"arcface.onnx", "glintr100.onnx", "w600k_r50.onnx", "face_analysis/models/glintr100.onnx"},
        "arcface.onnx (any insightface ArcFace ONNX, e.g. glintr100.onnx)",
        "insightface model zoo (antelopev2 glintr100.onnx / buffalo_l w600k_r50.onnx), also in Hallo's "
        "pretrained_models/face_analysis/models"}},
      {"efid",
       {{"expression.onnx"},
        "expression.onnx (a face crop -> expression coefficients ONNX, e.g. an exported Deep3DFaceRecon R-Net)",
        "export your expression model to ONNX; see eval/README.md for the input it receives"}},
  };
  return s;
}

bool glob_match(const std::string& pat, const std::string& name) {
  const auto star = pat.find('*');
  if (star == std::string::npos) return pat == name;
  const std::string pre = pat.substr(0, star), suf = pat.substr(star + 1);
  return name.size() >= pre.size() + suf.size() && name.compare(0, pre.size(), pre) == 0 &&
         name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
}

// The weights file for `metric`, or the reason it is unavailable.
std::optional<fs::path> locate_weights(const std::string& metric, const fs::path& dir, std::string* reason) {
  const auto it = weight_specs().find(metric);
  if (it == weight_specs().end()) return fs::path();  // weight-free
  const auto& spec = it->second;
  if (dir.empty()) {
    *reason = fmt::format("needs --weights-dir holding {} (from {})", spec.expected, spec.source);
    return std::nullopt;
  }
  for (const auto& pat : spec.names) {
    if (pat.find('*') == std::string::npos) {
      if (fs::is_regular_file(dir / pat)) return dir / pat;
      continue;
    }
    std::vector<fs::path> hits;
    if (fs::is_directory(dir))
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && glob_match(pat, e.path().filename().string())) hits.push_back(e.path());
    std::sort(hits.begin(), hits.end());
    if (!hits.empty()) return hits.front();
  }
  *reason = fmt::format("weights not found: expected {} in {} (from {})", spec.expected, dir.string(), spec.source);
  return std::nullopt;
}

// ---- decoded videos ----------------------------------------------------------------------

struct Video {
  fs::path path;
  at::Tensor u8;                // [N,H,W,3] RGB
  std::vector<cv::Mat> frames;  // views into u8
  std::optional<FaceTrack> track;
  int width = 0, height = 0;
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
  if (!v.track) v.track = track_face(v.frames, faces, kFaceMinSide, v.path.string());
  return *v.track;
}

// ---- FVD clips -----------------------------------------------------------------------------

// [N,H,W,3] u8 -> clips [K,3,T,224,224] in [-1,1] for `protocol`.
at::Tensor fvd_clips(const at::Tensor& u8, const std::string& protocol, const std::string& where) {
  at::Tensor x = u8.permute({0, 3, 1, 2}).to(at::kFloat);  // [N,3,H,W] 0..255
  if (protocol == "disco") {
    // DisCo: the whole video as one clip, frames resized to 224 (bicubic), x/127.5 - 1.
    x = at::upsample_bicubic2d(x, {224, 224}, /*align_corners=*/false);
    x = x / 127.5 - 1.0;
    return x.permute({1, 0, 2, 3}).unsqueeze(0).contiguous();  // [1,3,N,224,224]
  }
  // clips16 (the TF original): non-overlapping 16-frame clips, shorter side to 224
  // (bilinear), centre crop, 2x/255 - 1.
  const int64_t k = x.size(0) / 16;
  if (k == 0) fail_at(where, "has {} frames; FVD clips16 needs at least 16", x.size(0));
  x = x.slice(0, 0, k * 16);
  const int64_t h = x.size(2), w = x.size(3);
  const double s = 224.0 / std::min(h, w);
  const int64_t oh = std::max<int64_t>(224, std::llround(h * s)), ow = std::max<int64_t>(224, std::llround(w * s));
  x = at::upsample_bilinear2d(x, {oh, ow}, false);
  x = x.slice(2, (oh - 224) / 2, (oh - 224) / 2 + 224).slice(3, (ow - 224) / 2, (ow - 224) / 2 + 224);
  x = x * (2.0 / 255.0) - 1.0;
  return x.view({k, 16, 3, 224, 224}).permute({0, 2, 1, 3, 4}).contiguous();  // [K,3,16,224,224]
}

// ---- E-FID ----------------------------------------------------------------------------------

// Per-frame expression coefficients from an ONNX model: a square crop around the face
// (1.25x the landmark face box, edge-replicated outside the frame) resized to size x size,
// RGB, values / 255, NCHW; output flattened and sliced [begin, end).
at::Tensor expression_coeffs(cv::dnn::Net& net, const Video& v, const FaceTrack& t, const EvalOptions& o) {
  std::vector<at::Tensor> rows;
  for (size_t i = 0; i < v.frames.size(); ++i) {
    const cv::Rect2f fb = face::face_box(t.landmarks[i]);
    const float side = 1.25f * std::max(fb.width, fb.height);
    const float cx = fb.x + fb.width / 2, cy = fb.y + fb.height / 2;
    const cv::Rect r(std::lround(cx - side / 2), std::lround(cy - side / 2), std::lround(side), std::lround(side));
    cv::Mat padded;
    const int pad = static_cast<int>(side) + 1;
    cv::copyMakeBorder(v.frames[i], padded, pad, pad, pad, pad, cv::BORDER_REPLICATE);
    cv::Mat crop;
    cv::resize(padded(cv::Rect(r.x + pad, r.y + pad, r.width, r.height)), crop, cv::Size(o.efid_size, o.efid_size), 0,
               0, cv::INTER_AREA);
    net.setInput(cv::dnn::blobFromImage(crop, 1.0 / 255, cv::Size(), cv::Scalar(), /*swapRB=*/false, false));
    cv::Mat out = net.forward().reshape(1, 1);
    out.convertTo(out, CV_32F);
    const int end = o.efid_end < 0 ? out.cols : std::min(o.efid_end, out.cols);
    if (o.efid_begin >= end)
      fail("E-FID: coefficient slice [{}, {}) is empty for a model output of {} values", o.efid_begin, o.efid_end, out.cols);
    rows.push_back(at::from_blob(out.ptr<float>(), {out.cols}, at::kFloat).slice(0, o.efid_begin, end).clone());
  }
  return at::stack(rows);
}

// ---- per-video paired metrics ----------------------------------------------------------------

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

// Mean landmark distance (pixels of the real video) over `n` frames and the points [a, b).
double landmark_distance(const FaceTrack& g, const FaceTrack& r, double sx, double sy, int64_t n, int a, int b) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int k = a; k < b; ++k) {
      const double dx = g.landmarks[i][k].x * sx - r.landmarks[i][k].x, dy = g.landmarks[i][k].y * sy - r.landmarks[i][k].y;
      sum += std::sqrt(dx * dx + dy * dy);
    }
  return sum / (static_cast<double>(n) * (b - a));
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return ab / std::sqrt(aa * bb);
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::vector<float> read_audio_for(const fs::path& video, const EvalOptions& o) {
  fs::path src = video;
  if (o.audio_from != "generated" && !o.audio_from.empty()) {
    const fs::path from(o.audio_from);
    if (fs::is_directory(from)) {
      src.clear();
      for (const char* ext : {".wav", ".mp4", ".m4a", ".flac", ".mp3"})
        if (fs::exists(from / (video.stem().string() + ext))) { src = from / (video.stem().string() + ext); break; }
      if (src.empty()) fail_at(from.string(), "no audio named {}.wav/.mp4/.m4a/.flac/.mp3 for {}", video.stem().string(), video.string());
    } else {
      src = from;
    }
  }
  return media::read_audio(src, {kSampleRate});
}

// Seconds spent per metric (the report's timing block).
struct Timer {
  explicit Timer(double* acc) : acc_(acc), t0_(std::chrono::steady_clock::now()) {}
  ~Timer() { *acc_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
  double* acc_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

json evaluate(const std::vector<fs::path>& generated, const std::vector<fs::path>& real, const EvalOptions& o) {
  if (generated.empty()) fail("no generated videos to evaluate");
  std::set<std::string> want(o.metrics.begin(), o.metrics.end());
  for (const auto& m : want)
    if (std::find(known_metrics().begin(), known_metrics().end(), m) == known_metrics().end())
      fail("unknown metric '{}'; known: {}", m, fmt::join(known_metrics(), ", "));
  if (o.fvd_protocol != "disco" && o.fvd_protocol != "clips16")
    fail("unknown FVD protocol '{}'; known: disco (DisCo, what Hallo used), clips16", o.fvd_protocol);
  torch::NoGradGuard no_grad;

  json report = {{"settings",
                  {{"metrics", o.metrics}, {"fps", kFps}, {"fvd_protocol", o.fvd_protocol}, {"audio_from", o.audio_from},
                   {"lipsync_max_lag", o.max_lag}, {"weights_dir", o.weights_dir.string()}}},
                 {"videos", json::array()}, {"set", json::object()}, {"unavailable", json::object()},
                 {"errors", json::array()}, {"weights", json::object()}};

  // Weights: a missing file makes its metric unavailable; the rest still run.
  std::map<std::string, fs::path> weights;
  for (const auto& m : known_metrics()) {
    if (!want.count(m)) continue;
    if (needs_real(m) && real.empty()) {
      report["unavailable"][m] = "needs --real (the ground-truth videos)";
      want.erase(m);
      continue;
    }
    std::string reason;
    const auto w = locate_weights(m, o.weights_dir, &reason);
    if (!w) {
      report["unavailable"][m] = reason;
      spdlog::warn("{}: unavailable: {}", m, reason);
      want.erase(m);
      continue;
    }
    if (!w->empty()) {
      weights[m] = *w;
      report["weights"][m] = w->string();
    }
  }

  // Networks (loaded once).
  nets::FidInceptionV3 fid_net{nullptr};
  std::optional<nets::FvdDetector> fvd_net;
  nets::SyncNet sync_net{nullptr};
  std::optional<face::FaceEmbedder> arcface;
  cv::dnn::Net expr_net;
  if (want.count("fid")) fid_net = nets::load_fid_inception(weights["fid"]);
  if (want.count("fvd")) {
    nets::I3DOptions io;
    io.bn_eps = 1e-3;  // the TF original's (and DisCo's) BatchNorm; VideoGPT's port uses 1e-5
    io.final_pool = o.fvd_protocol == "disco" ? std::array<int64_t, 3>{1, 7, 7} : std::array<int64_t, 3>{2, 7, 7};
    fvd_net = nets::FvdDetector::open(weights["fvd"], io);
    report["settings"]["fvd_detector"] = fvd_net->kind();
  }
  if (want.count("sync")) sync_net = nets::load_syncnet(weights["sync"]);
  if (want.count("csim")) arcface.emplace(weights["csim"].string());
  if (want.count("efid")) {
    try {
      expr_net = cv::dnn::readNetFromONNX(weights["efid"].string());
    } catch (const cv::Exception& e) {
      fail_at(weights["efid"].string(), "not a loadable ONNX model: {}", e.what());
    }
  }
  std::optional<face::FaceAnalyzer> faces;
  if (want.count("sync") || want.count("lipsync") || want.count("lmd") || want.count("csim") || want.count("efid"))
    faces.emplace();

  // Real-set statistics: from the cache when the same set, settings and weights were seen.
  StatsCache cache(o.cache_dir);
  std::map<std::string, std::string> cache_key;
  std::map<std::string, GaussianStats> real_stats;
  for (const std::string m : {"fid", "fvd", "efid"}) {
    if (!want.count(m) || !cache.enabled()) continue;
    std::string settings = m == "fvd" ? o.fvd_protocol : m == "efid" ? fmt::format("{}:{}:{}", o.efid_begin, o.efid_end, o.efid_size) : "";
    cache_key[m] = cache.key(m, settings, weights[m], real);
    if (auto s = cache.get(m, cache_key[m])) {
      real_stats[m] = *s;
      report["set"][m]["real_stats"] = "cache " + cache.path_for(m, cache_key[m]).string();
    }
  }
  auto real_set_pending = [&](const std::string& m) { return want.count(m) && !real_stats.count(m); };
  const bool real_features = real_set_pending("fid") || real_set_pending("fvd") || real_set_pending("efid");
  const bool paired = want.count("lmd") || want.count("psnr") || want.count("ssim") || want.count("csim");

  std::map<std::string, fs::path> real_by_name;
  for (const auto& r : real) {
    const auto [it, fresh] = real_by_name.emplace(r.stem().string(), r);
    if (!fresh) fail_at(r.string(), "two real videos are named '{}' ({}); pairing is by name", r.stem().string(), it->second.string());
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

  std::map<std::string, std::vector<at::Tensor>> gen_feat, real_feat;
  std::map<std::string, double> seconds;
  std::set<fs::path> real_done;
  auto featurise_real = [&](Video& r) {
    if (real_done.count(r.path)) return;
    real_done.insert(r.path);
    if (real_set_pending("fid")) { Timer t(&seconds["fid"]); real_feat["fid"].push_back(nets::fid_features(*fid_net, r.u8, o.batch)); }
    if (real_set_pending("fvd")) { Timer t(&seconds["fvd"]); real_feat["fvd"].push_back(fvd_net->features(fvd_clips(r.u8, o.fvd_protocol, r.path.string()))); }
    if (real_set_pending("efid")) { Timer t(&seconds["efid"]); real_feat["efid"].push_back(expression_coeffs(expr_net, r, track_of(r, *faces), o)); }
  };

  size_t total = generated.size();
  if (real_features)
    for (const auto& r : real)
      if (!paired || std::none_of(generated.begin(), generated.end(), [&](const fs::path& g) { return g.stem() == r.stem(); })) ++total;
  ProgressBar bar("eval", total, " videos");
  if (o.quiet) bar.disable();

  auto per_video = [&](json& row, const std::string& metric, const std::function<void()>& fn) {
    try {
      Timer t(&seconds[metric]);
      fn();
    } catch (const Error& e) {
      row["errors"][metric] = e.what();
      report["errors"].push_back({{"video", row["generated"]}, {"metric", metric}, {"error", e.what()}});
      spdlog::warn("{}: {}: {}", row["generated"].get<std::string>(), metric, e.what());
    }
  };

  for (const auto& gpath : generated) {
    Video g = decode(gpath);
    json row = {{"generated", gpath.string()}, {"frames", g.u8.size(0)}, {"size", {g.width, g.height}}};
    std::optional<Video> r;
    const auto rit = real_by_name.find(gpath.stem().string());
    if (rit != real_by_name.end() && (paired || real_features)) {
      r = decode(rit->second);
      row["real"] = rit->second.string();
      featurise_real(*r);
    }
    if (want.count("fid")) per_video(row, "fid", [&] { gen_feat["fid"].push_back(nets::fid_features(*fid_net, g.u8, o.batch)); });
    if (want.count("fvd"))
      per_video(row, "fvd", [&] { gen_feat["fvd"].push_back(fvd_net->features(fvd_clips(g.u8, o.fvd_protocol, gpath.string()))); });
    if (want.count("efid"))
      per_video(row, "efid", [&] { gen_feat["efid"].push_back(expression_coeffs(expr_net, g, track_of(g, *faces), o)); });
    std::vector<float> audio;
    if (want.count("sync") || want.count("lipsync")) audio = read_audio_for(gpath, o);
    if (want.count("sync"))
      per_video(row, "sync", [&] {
        // The shared face track's boxes (syncnet_python uses S3FD tracks; see eval/README.md).
        const at::Tensor crops = syncnet_face_crops(g.frames, track_of(g, *faces).boxes, gpath.string());
        const auto s = syncnet_evaluate(*sync_net, crops, audio_to_pcm16(audio), gpath.string());
        row["sync_c"] = num(s.offsets.conf);
        row["sync_d"] = num(s.offsets.min_dist);
        row["av_offset"] = s.offsets.offset;
      });
    if (want.count("lipsync"))
      per_video(row, "lipsync", [&] {
        LipSyncOptions lo;
        lo.max_lag = o.max_lag;
        const auto& t = track_of(g, *faces);
        const auto res = lipsync_score(mouth_openings(t), audio, kFps, lo);
        row["lipsync_corr"] = num(res.corr);
        row["lipsync_lag"] = res.lag;
        row["face_detected_frames"] = t.hits;
      });
    const int64_t n = r ? std::min(g.u8.size(0), r->u8.size(0)) : 0;
    if (want.count("psnr") || want.count("ssim")) {
      const at::Tensor gr = resized_like(g, *r, n), rr = r->u8.slice(0, 0, n);
      if (want.count("psnr")) per_video(row, "psnr", [&] {
        const at::Tensor p = psnr(gr, rr);
        row["psnr"] = num(p.mean().item<double>());
      });
      if (want.count("ssim")) per_video(row, "ssim", [&] { row["ssim"] = num(ssim(gr, rr).mean().item<double>()); });
    }
    if (want.count("lmd"))
      per_video(row, "lmd", [&] {
        const auto& tg = track_of(g, *faces);
        const auto& tr = track_of(*r, *faces);
        const double sx = double(r->width) / g.width, sy = double(r->height) / g.height;
        row["lmd_mouth"] = num(landmark_distance(tg, tr, sx, sy, n, 48, 68));
        row["lmd_face"] = num(landmark_distance(tg, tr, sx, sy, n, 0, 68));
      });
    if (want.count("csim"))
      per_video(row, "csim", [&] {
        const auto& tg = track_of(g, *faces);
        const auto& tr = track_of(*r, *faces);
        const auto ref = arcface->embed(r->frames[0], tr.landmarks[0]);
        double sum = 0;
        for (size_t i = 0; i < g.frames.size(); ++i) sum += cosine(arcface->embed(g.frames[i], tg.landmarks[i]), ref);
        row["csim"] = num(sum / g.frames.size());
      });
    report["videos"].push_back(row);
    bar.advance();
  }
  if (real_features)
    for (const auto& rp : real) {
      if (real_done.count(rp)) continue;
      Video r = decode(rp);
      featurise_real(r);
      bar.advance();
    }
  bar.finish();

  // Set-level Fréchet distances.
  for (const std::string m : {"fid", "fvd", "efid"}) {
    if (!want.count(m)) continue;
    try {
      if (gen_feat[m].empty()) fail("no generated features");
      const at::Tensor ga = at::cat(gen_feat[m]);
      const auto gs = gaussian_stats(ga, m + " of the generated set");
      if (!real_stats.count(m)) {
        const at::Tensor ra = at::cat(real_feat[m]);
        real_stats[m] = gaussian_stats(ra, m + " of the real set");
        if (cache.enabled() && cache_key.count(m)) {
          cache.put(m, cache_key[m], real_stats[m]);
          report["set"][m]["real_stats"] = "computed, cached to " + cache.path_for(m, cache_key[m]).string();
        }
      }
      const auto fd = frechet_distance(gs, real_stats[m]);
      report["set"][m]["value"] = num(fd.distance);
      report["set"][m]["eps_fallback"] = fd.eps_fallback;
      report["set"][m]["generated_samples"] = gs.n;
      report["set"][m]["real_samples"] = real_stats[m].n;
    } catch (const Error& e) {
      report["set"][m]["error"] = e.what();
      report["errors"].push_back({{"metric", m}, {"error", e.what()}});
    }
  }

  // Means of the per-video metrics over the videos that produced them.
  json mean = json::object();
  for (const std::string k : {"sync_c", "sync_d", "lipsync_corr", "lmd_mouth", "lmd_face", "psnr", "ssim", "csim"}) {
    double sum = 0;
    int cnt = 0;
    for (const auto& row : report["videos"])
      if (row.contains(k) && row[k].is_number()) sum += row[k].get<double>(), ++cnt;
    if (cnt) mean[k] = sum / cnt;
  }
  report["mean"] = mean;
  for (const auto& [m, s] : seconds) report["timing_s"][m] = s;
  return report;
}

std::string markdown_report(const json& rep) {
  static const std::vector<std::pair<std::string, std::string>> cols = {
      {"sync_c", "Sync-C"}, {"sync_d", "Sync-D"}, {"av_offset", "offset"}, {"lipsync_corr", "lip-sync"},
      {"lmd_mouth", "LMD mouth"}, {"lmd_face", "LMD face"}, {"psnr", "PSNR"}, {"ssim", "SSIM"}, {"csim", "CSIM"}};
  std::vector<std::pair<std::string, std::string>> used;
  for (const auto& c : cols)
    for (const auto& row : rep["videos"])
      if (row.contains(c.first)) { used.push_back(c); break; }
  std::string md;
  if (!used.empty()) {
    md += "| video | frames |";
    for (const auto& c : used) md += " " + c.second + " |";
    md += "\n|---|---|";
    for (size_t i = 0; i < used.size(); ++i) md += "---|";
    md += "\n";
    auto cell = [](const json& v) {
      if (v.is_number_integer()) return fmt::format("{:+d}", v.get<int64_t>());
      if (v.is_number()) return fmt::format("{:.4g}", v.get<double>());
      return std::string("-");
    };
    for (const auto& row : rep["videos"]) {
      md += "| " + fs::path(row["generated"].get<std::string>()).filename().string() + " | " +
            std::to_string(row["frames"].get<int64_t>()) + " |";
      for (const auto& c : used) md += " " + (row.contains(c.first) ? cell(row[c.first]) : std::string("-")) + " |";
      md += "\n";
    }
    md += "| **mean** | |";
    for (const auto& c : used) md += " " + (rep["mean"].contains(c.first) ? cell(rep["mean"][c.first]) : std::string("")) + " |";
    md += "\n";
  }
  for (const auto& [m, s] : rep["set"].items()) {
    if (s.contains("value"))
      md += fmt::format("\n**{}** {:.4f} ({} generated vs {} real samples{})", m == "efid" ? "E-FID" : m == "fid" ? "FID" : "FVD",
                        s["value"].is_number() ? s["value"].get<double>() : NAN, s["generated_samples"].get<int64_t>(),
                        s["real_samples"].get<int64_t>(), s.value("eps_fallback", false) ? ", eps fallback" : "");
    else if (s.contains("error"))
      md += fmt::format("\n**{}** failed: {}", m, s["error"].get<std::string>());
  }
  for (const auto& [m, why] : rep["unavailable"].items()) md += fmt::format("\n**{}** unavailable: {}", m, why.get<std::string>());
  md += "\n";
  return md;
}

}  // namespace hallo::eval
