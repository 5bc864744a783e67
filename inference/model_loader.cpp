#include "inference/model_loader.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/io/state_dict.h"
#include "model/nn/loader.h"
#include "trainer/model_folder.h"

namespace hallo::inference {

namespace fs = std::filesystem;

namespace {

model::AutoencoderKL load_vae(const fs::path& w) {
  if (!fs::exists(w)) fail_at(w.string(), "no such VAE folder or file");
  const fs::path cfg = (fs::is_directory(w) ? w : w.parent_path()) / "config.json";
  if (!fs::exists(cfg)) fail_at(cfg.string(), "no such file (the VAE's config.json)");
  model::AutoencoderKL vae(model::VaeConfig::from_json(io::load_json_file(cfg), cfg.string()));
  nn::load_weights(*vae, io::StateDict::open(w), {true, model::vae_translate_legacy_key});
  vae->eval();
  return vae;
}

void load_net_strict(model::HalloNet& net, const io::StateDict& sd, const std::string& where) {
  try {
    net->load(sd, /*strict=*/true);
  } catch (const Error& e) {
    fail_at(where, "net weights do not fit the net config: {}", e.what());
  }
  net->eval();
}

}  // namespace

LoadedModel load_model_folder(const fs::path& dir) {
  if (!fs::exists(dir)) fail_at(dir.string(), "no such model folder");
  if (!trainer::is_model_folder(dir))
    fail_at(dir.string(), "not a model folder (no {}); a `hallo train` run's final/ or checkpoints/* is one",
            trainer::kModelManifest);
  const trainer::ModelFolder m = trainer::read_model_folder(dir);
  LoadedModel r;
  r.source = dir.string();
  const std::string where = (dir / trainer::kModelManifest).string();
  r.net = model::HalloNet(model::HalloNetConfig::from_json(m.net_config, (dir / "net_config.json").string()));
  load_net_strict(r.net, trainer::net_state_dict(m), dir.string());
  if (m.vae_dir.empty()) fail_at(where, "the model folder has no VAE");
  r.vae = load_vae(m.vae_dir);

  // Audio: the pipeline config the shards were made with, minus what the trainer added.
  nlohmann::json a = m.audio.is_object() ? m.audio : nlohmann::json::object();
  for (const char* k : {"feature_extractor_id", "feature_layers", "feature_dim", "wav2vec2"}) a.erase(k);
  if (m.audio.contains("wav2vec2")) a["wav2vec2_path"] = (dir / m.audio.at("wav2vec2").get<std::string>()).string();
  if (!a.contains("extractor")) fail_at((dir / "audio.json").string(), "no audio feature settings ('extractor')");
  r.audio = audio::AudioPipelineConfig::from_json(a, (dir / "audio.json").string());

  const nlohmann::json d = m.manifest.value("data", nlohmann::json::object());
  r.width = d.value("width", 0);
  r.height = d.value("height", 0);
  r.frames = d.value("n_sample_frames", 0);
  r.motion_frames = d.value("n_motion_frames", 0);
  r.fps = d.value("fps", 0.0);
  r.prepare = d.value("prepare", nlohmann::json());
  if (m.stage == 1) spdlog::warn("{}: a stage-1 model has no audio path; the video will not follow the audio", dir.string());
  return r;
}

LoadedModel load_upstream(const UpstreamPaths& p) {
  if (p.net.empty()) fail("animate: give --model DIR, or --net with --vae (upstream's layout)");
  if (p.vae.empty()) fail_at(p.net.string(), "--net needs --vae (the VAE folder, e.g. sd-vae-ft-mse)");
  if (!fs::exists(p.net)) fail_at(p.net.string(), "no such net weights file");
  LoadedModel r;
  r.source = p.net.string();
  model::HalloNetConfig cfg = model::HalloNetConfig::hallo();
  if (!p.net_config.empty()) {
    if (!fs::exists(p.net_config)) fail_at(p.net_config.string(), "no such net config");
    cfg = model::HalloNetConfig::from_json(io::load_json_file(p.net_config), p.net_config.string());
  }
  r.net = model::HalloNet(cfg);
  if (!p.motion_module.empty()) {
    if (!fs::exists(p.motion_module)) fail_at(p.motion_module.string(), "no such motion module checkpoint");
    const auto rep = nn::load_weights(*r.net->denoising_unet, io::StateDict::open(p.motion_module), {false, {}});
    if (!rep.unexpected.empty() || !rep.mismatched.empty())
      fail_at(p.motion_module.string(), "motion module keys do not fit the denoising UNet ({} unexpected, {} mis-shaped; first: {})",
              rep.unexpected.size(), rep.mismatched.size(),
              !rep.unexpected.empty() ? rep.unexpected.front() : rep.mismatched.front());
  }
  load_net_strict(r.net, io::StateDict::open(p.net), p.net.string());
  r.vae = load_vae(p.vae);
  nlohmann::json a = {{"extractor", "wav2vec2"}, {"layers", "all"}, {"window_radius", 2}, {"fps", 25.0}};
  if (p.wav2vec2.empty()) fail_at(p.net.string(), "--net needs --wav2vec2 (the wav2vec2-base-960h folder)");
  a["wav2vec2_path"] = p.wav2vec2.string();
  r.audio = audio::AudioPipelineConfig::from_json(a, "--wav2vec2");
  r.width = r.height = 512;
  r.frames = 16;
  r.motion_frames = 2;
  r.fps = 25;
  return r;
}

}  // namespace hallo::inference
