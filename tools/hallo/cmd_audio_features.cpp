// hallo audio-features IN --out OUT.h5|.safetensors: Hallo audio features for one
// media file (any container libav reads), so users can precompute them. Writes
// audio_emb [N, L, D] float32 (N padded to --clip-length when given) and, with
// --windows, audio_emb_windows [N, 2r+1, L, D]; metadata records the extractor
// id, unpadded frame count, fps and sample rate. Output appears by atomic rename.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/config_file.h"
#include "core/error.h"
#include "data/audio/audio_pipeline.h"
#include "data/shard/h5_file.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

data::Blob f32_blob(const std::string& name, const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous();
  data::Blob b;
  b.name = name;
  b.elem = data::Elem::F32;
  for (auto d : c.sizes()) b.dims.push_back(static_cast<uint64_t>(d));
  const auto* p = reinterpret_cast<const uint8_t*>(c.data_ptr<float>());
  b.bytes.assign(p, p + c.numel() * sizeof(float));
  b.chunk_rows = std::max<uint64_t>(1, std::min<uint64_t>(b.dims[0], 256));
  b.compress = true;
  return b;
}

void write_h5(const std::string& out, const std::map<std::string, at::Tensor>& tensors,
              const std::map<std::string, std::string>& meta) {
  // HDF5 writes through its own file handle: write to a temp name and rename.
  AtomicFile af(out);
  const std::string tmp = af.temp_path().string();
  {
    data::h5::Lock lock;
    auto f = data::h5::create_file(tmp);
    for (const auto& [k, v] : tensors) data::h5::write_blob(f.get(), f32_blob(k, v), 4, out);
    for (const auto& [k, v] : meta) {
      data::Attr a;
      a.name = k;
      a.s = v;
      data::h5::write_attr(f.get(), a, out);
    }
  }
  af.commit();
}

}  // namespace

Command register_audio_features(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string in, out, config, extractor, wav2vec2, wav2vec2_config, layers, separator;
    double fps = 0;
    int64_t clip_length = -1;
    bool windows = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("audio-features", "Compute Hallo audio features (wav2vec2 or log-mel) for one media file");
  sub->add_option("input", o->in, "audio or video file (any format libav reads)")->required();
  sub->add_option("--out", o->out, "output .h5 or .safetensors (written to a temp name, then renamed)")->required();
  sub->add_option("--config", o->config, "audio config (YAML/JSON: extractor, fps, layers, separator, ...)");
  sub->add_option("--extractor", o->extractor, "wav2vec2 (default when --wav2vec2 is given) or logmel")
      ->check(CLI::IsMember({"wav2vec2", "logmel"}));
  sub->add_option("--wav2vec2", o->wav2vec2, "wav2vec2 HF folder (config.json + model.safetensors/pytorch_model.bin)");
  sub->add_option("--wav2vec2-config", o->wav2vec2_config, "config.json when --wav2vec2 is a single weights file");
  sub->add_option("--layers", o->layers, "all (hidden_states[1:]), last, or 1-based indices like 1,6,12");
  sub->add_option("--fps", o->fps, "video frame rate the features align to (default 25)")->check(CLI::PositiveNumber);
  sub->add_option("--clip-length", o->clip_length, "pad the frame count to a multiple of this (0: none)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--separator", o->separator, "MDX-Net vocal separation ONNX model (off by default)");
  sub->add_flag("--windows", o->windows, "also write audio_emb_windows [N, 2r+1, L, D]");
  return [o]() {
    if (!ends_with(o->out, ".h5") && !ends_with(o->out, ".safetensors"))
      fail_at(o->out, "output must end in .h5 or .safetensors");
    nlohmann::json j = o->config.empty() ? nlohmann::json::object() : load_config_file(o->config);
    if (!o->extractor.empty()) j["extractor"] = o->extractor;
    else if (!j.contains("extractor")) j["extractor"] = o->wav2vec2.empty() ? "logmel" : "wav2vec2";
    if (!o->wav2vec2.empty()) j["wav2vec2_path"] = o->wav2vec2;
    if (!o->wav2vec2_config.empty()) j["wav2vec2_config"] = o->wav2vec2_config;
    if (!o->layers.empty()) j["layers"] = o->layers;
    if (o->fps > 0) j["fps"] = o->fps;
    if (o->clip_length >= 0) j["clip_length"] = o->clip_length;
    if (!o->separator.empty()) {
      if (!j.contains("separator") || j["separator"].is_null()) j["separator"] = nlohmann::json::object();
      j["separator"]["onnx"] = o->separator;
    }
    auto cfg = audio::AudioPipelineConfig::from_json(j, o->config.empty() ? "audio-features options" : o->config);
    audio::AudioPipeline pipe(cfg);
    auto f = pipe.from_file(o->in);
    std::map<std::string, at::Tensor> tensors{{"audio_emb", f.emb}};
    if (o->windows) tensors["audio_emb_windows"] = audio::audio_windows(f.emb, cfg.features.window_radius);
    std::map<std::string, std::string> meta{{"extractor", f.extractor_id},
                                            {"audio_frames", std::to_string(f.audio_frames)},
                                            {"fps", fmt::format("{}", cfg.features.fps)},
                                            {"sample_rate", std::to_string(cfg.features.sample_rate)},
                                            {"window_radius", std::to_string(cfg.features.window_radius)},
                                            {"source", o->in},
                                            {"vocal_separation", cfg.separator ? cfg.separator->onnx : ""}};
    if (ends_with(o->out, ".h5")) {
      write_h5(o->out, tensors, meta);
    } else {
      std::vector<io::TensorRecord> recs;
      for (const auto& [k, v] : tensors) recs.push_back(io::from_tensor(k, v.contiguous()));
      io::write_safetensors(o->out, recs, meta);
    }
    spdlog::info("{}: {} frames ({} before padding) x {} layers x {} dims [{}] -> {}", o->in, f.emb.size(0),
                 f.audio_frames, f.emb.size(1), f.emb.size(2), f.extractor_id, o->out);
    return 0;
  };
}

}  // namespace hallo::cli
