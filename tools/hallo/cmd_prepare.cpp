// hallo prepare --input DIR_OR_LIST --out SHARD_DIR [--config configs/data/*.yaml]:
// raw talking-head videos -> cleaned clips -> HDF5 training shards + a report.
// Rerunning the same command resumes where an interrupted run stopped.
#include <spdlog/spdlog.h>

#include <iostream>

#include "core/config_file.h"
#include "core/error.h"
#include "data/prepare/prepare.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

Command register_prepare(CLI::App& app, const GlobalOptions& g) {
  struct Opts {
    std::vector<std::string> inputs;
    std::string out, config, arcface, wav2vec2, vae, frames;
    int resolution = 0, clip_length = 0, jobs = 0, stop_after = -1;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("prepare", "Turn raw talking-head videos into cleaned, clipped HDF5 training shards");
  sub->add_option("--input,-i", o->inputs, "video folder(s), video files, or .txt/.lst lists of paths")->required();
  sub->add_option("--out,-o", o->out, "shard folder (rerun the same command to resume)")->required();
  sub->add_option("--config,-c", o->config, "data config (configs/data/*.yaml)");
  sub->add_option("--resolution", o->resolution, "training frame size (overrides the config)")->check(CLI::PositiveNumber);
  sub->add_option("--clip-length", o->clip_length, "frames per clip (overrides the config)")->check(CLI::PositiveNumber);
  sub->add_option("--arcface", o->arcface, "ArcFace ONNX model for face embeddings (else zeros, flagged)");
  sub->add_option("--wav2vec2", o->wav2vec2, "wav2vec2 HF folder: use wav2vec2 audio features instead of log-mel");
  sub->add_option("--vae", o->vae, "VAE folder: store posterior mean/std latents per frame");
  sub->add_option("--frames", o->frames, "frame storage: jpeg or raw")->check(CLI::IsMember({"jpeg", "raw"}));
  sub->add_option("--jobs,-j", o->jobs, "videos processed at once (default: --threads, at most 4)")->check(CLI::PositiveNumber);
  sub->add_option("--stop-after", o->stop_after, "testing: stop as if killed after N videos")->group("");
  return [o, &g]() {
    nlohmann::json j = o->config.empty() ? nlohmann::json::object() : load_config_file(o->config);
    if (o->resolution) j["resolution"] = o->resolution;
    if (o->clip_length) j["clip_length"] = o->clip_length;
    if (!o->arcface.empty()) j["arcface_onnx"] = o->arcface;
    if (!o->vae.empty()) j["vae"] = o->vae;
    if (!o->frames.empty()) j["shards"]["frames"] = o->frames;
    if (!o->wav2vec2.empty()) {
      j["audio"]["extractor"] = "wav2vec2";
      j["audio"]["wav2vec2_path"] = o->wav2vec2;
    }
    data::PrepareOptions po;
    po.config = data::PrepareConfig::from_json(j, o->config.empty() ? "prepare options" : o->config);
    for (const auto& i : o->inputs) po.inputs.emplace_back(i);
    po.out = o->out;
    // Each worker holds its own models (dlib, ArcFace, wav2vec2, VAE) and a video's features:
    // by default at most 4 at once.
    po.jobs = o->jobs ? o->jobs
                      : std::clamp(g.threads ? g.threads : static_cast<int>(std::thread::hardware_concurrency()), 1, 4);
    po.stop_after = o->stop_after;
    auto rep = data::run_prepare(po);
    std::cout << rep.text;
    return 0;
  };
}

}  // namespace hallo::cli
