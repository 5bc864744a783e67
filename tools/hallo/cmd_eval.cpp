// hallo eval --generated DIR|LIST --real DIR|LIST --metrics fid,fvd,sync,efid,lmd,lipsync,psnr,ssim,csim
//            --weights-dir DIR [--audio-from generated|DIR|FILE] [--fvd-protocol disco|clips16] [--out report.json]
// Scores generated talking-head videos with the reference tools' definitions
// (eval/evaluator.h); writes a JSON report and prints / writes a Markdown table.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "eval/evaluator.h"
#include "eval/stats_cache.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

namespace fs = std::filesystem;

namespace {

bool is_video(const fs::path& p) {
  static const std::vector<std::string> ext = {".mp4", ".mov", ".mkv", ".avi", ".webm"};
  return std::find(ext.begin(), ext.end(), p.extension().string()) != ext.end();
}

// Folders (their videos, sorted), list files (.txt / .lst: one path per line, relative
// to the list's folder, # comments) and video files.
std::vector<fs::path> expand_videos(const std::vector<std::string>& inputs, const char* flag) {
  std::vector<fs::path> out;
  for (const auto& in : inputs) {
    const fs::path p(in);
    if (fs::is_directory(p)) {
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file() && is_video(e.path())) found.push_back(e.path());
      if (found.empty()) fail_at(in, "no videos (.mp4/.mov/.mkv/.avi/.webm) in this folder ({})", flag);
      std::sort(found.begin(), found.end());
      out.insert(out.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p) && (p.extension() == ".txt" || p.extension() == ".lst")) {
      std::ifstream f(p);
      std::string line;
      int lineno = 0;
      while (std::getline(f, line)) {
        ++lineno;
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (line.empty() || line[0] == '#') continue;
        fs::path v(line);
        if (v.is_relative()) v = p.parent_path() / v;
        if (!fs::is_regular_file(v)) fail_at(fmt::format("{}:{}", in, lineno), "no such video '{}' ({})", line, flag);
        out.push_back(v);
      }
      if (out.empty()) fail_at(in, "lists no videos ({})", flag);
    } else if (fs::is_regular_file(p)) {
      out.push_back(p);
    } else {
      fail_at(in, "no such video, folder or list ({})", flag);
    }
  }
  return out;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string m; std::getline(ss, m, ',');)
    if (!m.empty() && std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  return out;
}

}  // namespace

Command register_eval(CLI::App& app, const GlobalOptions& g) {
  struct Opts {
    std::vector<std::string> generated, real;
    std::string metrics = "lipsync", out, efid_slice;
    eval::EvalOptions e;
    std::string cache_dir;
    bool no_cache = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("eval", "Score generated talking-head videos: FID, FVD, Sync-C/D, E-FID, LMD, "
                                         "lip-sync, PSNR, SSIM, CSIM");
  sub->add_option("--generated", o->generated, "generated videos: files, folders or .txt lists")->required();
  sub->add_option("--real", o->real, "ground-truth videos (paired with the generated ones by file name)");
  sub->add_option("--metrics", o->metrics, "comma-separated: fid,fvd,efid,sync,lipsync,lmd,psnr,ssim,csim (or all)");
  sub->add_option("--weights-dir", o->e.weights_dir,
                  "network weights: pt_inception-2015-12-05-6726825d.pth, i3d_pretrained_400.pt or i3d_torchscript.pt, "
                  "syncnet_v2.model, arcface.onnx, expression.onnx");
  sub->add_option("--audio-from", o->e.audio_from,
                  "speech for sync / lipsync: 'generated' (each video's own track), a folder of <name>.wav/.mp4, or one file");
  sub->add_option("--fvd-protocol", o->e.fvd_protocol, "disco (whole video, Hallo's numbers) or clips16 (16-frame clips)")
      ->check(CLI::IsMember({"disco", "clips16"}));
  sub->add_option("--fvd-bn-eps", o->e.fvd_bn_eps, "I3D BatchNorm eps: 1e-3 (TF original, DisCo, piergiaj) or 1e-5 "
                                                  "(VideoGPT's port); TorchScript detectors keep their own")
      ->check(CLI::PositiveNumber);
  sub->add_option("--max-lag", o->e.max_lag, "lip-sync: frames searched either way for the best lag")->check(CLI::Range(0, 25));
  sub->add_option("--batch", o->e.batch, "frames per network call")->check(CLI::Range(1, 1024));
  sub->add_option("--efid-coeffs", o->efid_slice, "E-FID: slice BEGIN:END of the model output (e.g. 80:144 for "
                                                   "Deep3DFaceRecon's expression block; default all)");
  sub->add_option("--efid-size", o->e.efid_size, "E-FID: model input side")->check(CLI::Range(16, 1024));
  sub->add_option("--cache-dir", o->cache_dir, "real-set statistics cache (default ~/.cache/hallo/eval)");
  sub->add_flag("--no-cache", o->no_cache, "neither read nor write the real-set statistics cache");
  sub->add_option("--out", o->out, "JSON report (written atomically; the Markdown table goes next to it as .md)");
  return [o, &g]() {
    o->e.metrics = o->metrics == "all" ? eval::known_metrics() : split(o->metrics);
    if (o->e.metrics.empty()) fail("--metrics is empty");
    for (const auto& m : o->e.metrics) eval::needs_real(m);  // names an unknown metric before any work
    if (!o->efid_slice.empty()) {
      const auto colon = o->efid_slice.find(':');
      try {
        if (colon == std::string::npos) throw std::invalid_argument("no colon");
        o->e.efid_begin = colon == 0 ? 0 : std::stoi(o->efid_slice.substr(0, colon));
        o->e.efid_end = colon + 1 == o->efid_slice.size() ? -1 : std::stoi(o->efid_slice.substr(colon + 1));
      } catch (const std::exception&) {
        fail("--efid-coeffs '{}': expected BEGIN:END", o->efid_slice);
      }
    }
    o->e.cache_dir = o->no_cache ? fs::path() : o->cache_dir.empty() ? eval::default_cache_dir() : fs::path(o->cache_dir);
    o->e.quiet = g.quiet;
    if (!o->out.empty() && fs::path(o->out).extension() == ".md")
      fail_at(o->out, "--out is the JSON report (the Markdown table is written next to it as .md)");
    if (!o->out.empty()) {
      // Fail before the work, not after it: the report's folder must be writable.
      const fs::path parent = fs::absolute(o->out).parent_path();
      std::error_code ec;
      fs::create_directories(parent, ec);
      if (ec) fail_at(o->out, "cannot create the report's folder {}: {}", parent.string(), ec.message());
    }
    const auto generated = expand_videos(o->generated, "--generated");
    const auto real = o->real.empty() ? std::vector<fs::path>() : expand_videos(o->real, "--real");
    const nlohmann::json report = eval::evaluate(generated, real, o->e);
    const std::string md = eval::markdown_report(report);
    fmt::print("{}", md);
    if (!o->out.empty()) {
      write_file_atomic(o->out, report.dump(2) + "\n");
      fs::path mdp = o->out;
      mdp.replace_extension(".md");
      write_file_atomic(mdp, md);
    }
    if (!report["errors"].empty()) {
      spdlog::error("{} metric computation(s) failed (see \"errors\" in the report)", report["errors"].size());
      return 1;
    }
    return 0;
  };
}

}  // namespace hallo::cli
