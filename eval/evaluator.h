#pragma once
// `hallo eval`: scores generated talking-head videos against real ones with the
// reference tools' definitions. Each video is decoded once (25 fps RGB + 16 kHz
// mono) and shared by every metric; the networks run in batches under no-grad.
//
// Set-level metrics (Fréchet distances): fid (pytorch-fid InceptionV3, every
// frame), fvd (I3D; DisCo whole-video protocol or 16-frame clips), efid (an ONNX
// expression model's per-frame coefficients). Per-video metrics, averaged over
// videos: sync (SyncNet Sync-C / Sync-D / AV offset), lipsync (mouth opening vs
// loudness), lmd (landmark distance to the paired real video), psnr, ssim, csim
// (ArcFace cosine to the real video's first frame).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace hallo::eval {

struct EvalOptions {
  std::vector<std::string> metrics;       // known names, in the user's order
  std::filesystem::path weights_dir;      // network weights (see README: file names and sources)
  std::string fvd_protocol = "disco";     // disco | clips16 (eval/fvd_protocol.h)
  double fvd_bn_eps = 1e-3;               // I3D BatchNorm eps: 1e-3 (TF, DisCo, piergiaj) or 1e-5 (VideoGPT)
  std::string audio_from = "generated";   // generated (each video's own track) | a folder | a file
  std::filesystem::path cache_dir;        // real-set statistics cache; empty: off
  int max_lag = 3;                        // lipsync
  int batch = 16;                         // frames (FID) / windows per network call
  int efid_begin = 0, efid_end = -1;      // E-FID: coefficient slice [begin, end) of the model output
  int efid_size = 224;                    // E-FID model input side
  bool quiet = false;
};

// Metrics `hallo eval` knows, in report order.
const std::vector<std::string>& known_metrics();
// Metrics that need --real.
bool needs_real(const std::string& metric);

// Runs everything and returns the report (settings, per-video rows, aggregates,
// unavailable metrics with the reason, per-video errors). Missing weights make
// that metric unavailable and the others still run.
nlohmann::json evaluate(const std::vector<std::filesystem::path>& generated,
                        const std::vector<std::filesystem::path>& real, const EvalOptions& o);

// The report as a Markdown table (per-video rows + a mean / set row).
std::string markdown_report(const nlohmann::json& report);

}  // namespace hallo::eval
