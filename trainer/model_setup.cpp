#include "trainer/model_setup.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include <regex>

#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/nn/loader.h"
#include "model/nn/lora.h"
#include "trainer/model_folder.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

// Block type names of a UNet2D config, spelled as the UNet3D's (CrossAttnDownBlock2D -> ...3D).
nlohmann::json to_3d_names(nlohmann::json j) {
  auto fix = [](nlohmann::json& v) {
    if (!v.is_string()) return;
    std::string s = v.get<std::string>();
    const auto pos = s.rfind("2D");
    if (pos != std::string::npos) s.replace(pos, 2, "3D");
    v = s;
  };
  for (const char* k : {"down_block_types", "up_block_types"})
    if (j.contains(k) && j[k].is_array())
      for (auto& t : j[k]) fix(t);
  if (j.contains("mid_block_type")) fix(j["mid_block_type"]);
  return j;
}

void merge(nlohmann::json& into, const nlohmann::json& from) {
  if (!from.is_object()) return;
  for (const auto& [k, v] : from.items()) into[k] = v;
}

fs::path sd_unet_dir(const TrainConfig& c) {
  fs::path p = c.base_model_path;
  return fs::is_directory(p / "unet") ? p / "unet" : p;
}

// The net config of a stage-1 model folder, when stage 2 starts from one. A missing folder
// is named here, before anything is built: without its config the net would be built at
// the SD default size (1.3 B parameters, half a minute of random init) only to fail later.
nlohmann::json stage1_net_config(const TrainConfig& c) {
  if (c.stage != 2 || c.stage1_ckpt_dir.empty()) return nullptr;
  if (!fs::is_directory(c.stage1_ckpt_dir))
    fail_at(c.stage1_ckpt_dir, "no such stage-1 checkpoint folder (stage1_ckpt_dir)");
  if (!is_model_folder(c.stage1_ckpt_dir)) return nullptr;
  return read_model_folder(c.stage1_ckpt_dir).net_config;
}

// The SD UNet config both UNets are built from.
nlohmann::json unet_json(const TrainConfig& c) {
  nlohmann::json j = nlohmann::json::object();
  if (const auto s1 = stage1_net_config(c); !s1.is_null() && c.base_model_path.empty()) {
    j = s1.at("reference_unet");
  } else if (!c.base_model_path.empty()) {
    const fs::path cfg = sd_unet_dir(c) / "config.json";
    if (!fs::exists(cfg)) fail_at(cfg.string(), "no such file (base_model_path must be an SD1.5 folder with unet/config.json)");
    j = io::load_json_file(cfg);
  }
  merge(j, c.model.unet);
  return j;
}

// Where a whole net comes from: a model folder or a single weights file.
io::StateDict open_net(const fs::path& p, nlohmann::json* config) {
  if (!fs::exists(p)) fail_at(p.string(), "no such file or folder (net weights)");
  if (is_model_folder(p)) {
    ModelFolder m = read_model_folder(p);
    if (config) *config = m.net_config;
    return net_state_dict(m);
  }
  return io::StateDict::open(p);
}

// Upstream's stage-1 output: reference_unet.pth, denoising_unet.pth, face_locator.pth,
// imageproj.pth (or the newest <part>-<step>.pth), each a state dict of that part.
io::StateDict open_upstream_stage1(const fs::path& dir) {
  io::WeightSet all;
  all.source = dir.string();
  all.format = "torch-zip";
  for (const char* part : {"reference_unet", "denoising_unet", "face_locator", "imageproj"}) {
    fs::path file = dir / (std::string(part) + ".pth");
    if (!fs::exists(file)) {
      long best = -1;
      const std::regex re(std::string(part) + "-([0-9]+)\\.pth");
      for (const auto& e : fs::directory_iterator(dir)) {
        std::smatch m;
        const std::string name = e.path().filename().string();
        if (std::regex_match(name, m, re) && std::stol(m[1]) > best) {
          best = std::stol(m[1]);
          file = e.path();
        }
      }
      if (best < 0) fail_at(dir.string(), "stage-1 checkpoint folder has no model.json and no {}.pth", part);
    }
    io::StateDict sd = io::StateDict::open(file);
    for (auto r : sd.weights().tensors) {
      r.name = std::string(part) + "." + r.name;
      all.tensors.push_back(r);
    }
  }
  all.sort_by_name();
  return io::StateDict(std::move(all));
}

bool temporal_or_audio(const std::string& k) {
  return k.find("motion_modules.") != std::string::npos || k.find("audio_modules.") != std::string::npos ||
         k.rfind("audioproj.", 0) == 0;
}

// Loads `sd` onto `net`; besides `may_miss(key)` keys, everything must match.
nn::LoadReport load_checked(torch::nn::Module& net, const io::StateDict& sd, const std::string& what,
                            const std::function<bool(const std::string&)>& may_miss,
                            std::function<std::string(const std::string&)> rename = {}) {
  nn::LoadReport rep = nn::load_weights(net, sd, nn::LoadOptions{false, std::move(rename)});
  std::vector<std::string> problems;
  for (const auto& k : rep.unexpected) problems.push_back("unexpected: " + k);
  for (const auto& k : rep.mismatched) problems.push_back("mis-shaped: " + k);
  for (const auto& k : rep.missing)
    if (!may_miss(k)) problems.push_back("missing: " + k);
  if (!problems.empty()) {
    std::string msg = what + " (" + sd.weights().source + ") does not fit the network:";
    for (const auto& p : problems) msg += "\n  " + p;
    throw Error(msg);
  }
  return rep;
}

}  // namespace

nlohmann::json net_config_for(const TrainConfig& c, const DataShape& shape) {
  const nlohmann::json unet = unet_json(c);
  const model::UNet2DConfig u2 = model::UNet2DConfig::from_json(unet, "unet config");
  nlohmann::json den = to_3d_names(unet);
  if (c.stage == 1) {
    // Upstream's stage-1 UNet3D: no motion or audio modules, plain GroupNorm.
    merge(den, {{"use_motion_module", false},
                {"use_audio_module", false},
                {"use_inflated_groupnorm", false},
                {"motion_module_mid_block", false},
                {"unet_use_temporal_attention", false}});
  } else {
    merge(den, c.unet_additional_kwargs);
  }
  nlohmann::json face = {{"conditioning_embedding_channels", u2.block_out_channels.front()}};
  nlohmann::json image = {{"cross_attention_dim", u2.cross_attention_dim},
                          {"clip_embeddings_dim", shape.face_emb_dim > 0 ? shape.face_emb_dim : 512},
                          {"clip_extra_context_tokens", 4}};
  if (const auto s1 = stage1_net_config(c); !s1.is_null()) {  // the parts stage 1 trained keep their shapes
    face = s1.at("face_locator");
    image = s1.at("imageproj");
  }
  merge(face, c.model.face_locator);
  nlohmann::json j = {{"reference_unet", unet}, {"denoising_unet", den}, {"face_locator", face}, {"imageproj", image}};
  if (c.stage == 2) {
    const model::UNet3DConfig u3 = model::UNet3DConfig::from_json(den, "unet config + unet_additional_kwargs");
    nlohmann::json a = {{"seq_len", 2 * c.data.audio_margin + 1},
                        {"blocks", shape.audio_layers > 0 ? shape.audio_layers : 12},
                        {"channels", shape.audio_dim > 0 ? shape.audio_dim : 768},
                        {"intermediate_dim", 512},
                        {"output_dim", u3.audio_attention_dim},
                        {"context_tokens", 32}};
    merge(a, c.model.audioproj);
    for (const char* k : {"blocks", "channels"})
      if (shape.audio_layers > 0 && c.model.audioproj.is_object() && c.model.audioproj.contains(k) &&
          a[k] != (std::string(k) == "blocks" ? shape.audio_layers : shape.audio_dim))
        fail("model.audioproj.{} = {} disagrees with the shards' audio features [{} layers x {}]", k, a[k].dump(),
             shape.audio_layers, shape.audio_dim);
    j["audioproj"] = a;
  }
  return j;
}

void zero_init_like_upstream(model::HalloNet& net) {
  at::NoGradGuard no_grad;
  for (const auto& item : net->named_parameters()) {
    const std::string& k = item.key();
    const bool zero = k.rfind("face_locator.conv_out.", 0) == 0 ||
                      (k.find(".motion_modules.") != std::string::npos &&
                       k.find(".temporal_transformer.proj_out.") != std::string::npos) ||
                      (k.find(".audio_modules.") != std::string::npos && k.find(".zero_conv_") != std::string::npos);
    if (zero) item.value().zero_();
  }
}

VaeBundle build_vae(const TrainConfig& c, bool need_vae, bool load) {
  VaeBundle b;
  const uint64_t seed = c.model.init_seed ? c.model.init_seed : c.seed;
  // A diffusers folder / weights file, or a seeded random one from model.vae.
  // Without vae_model_path, a whole-net model folder (net_path / init.net) brings its own VAE.
  std::string vae_path = c.vae_model_path;
  if (vae_path.empty() && !c.net_path.empty() && is_model_folder(c.net_path) &&
      fs::exists(fs::path(c.net_path) / "vae" / "config.json"))
    vae_path = (fs::path(c.net_path) / "vae").string();
  if (!vae_path.empty() && load) {
    fs::path w = vae_path, cfg = fs::is_directory(w) ? w / "config.json" : w.parent_path() / "config.json";
    if (!fs::exists(w)) fail_at(w.string(), "no such VAE (vae_model_path)");
    if (!fs::exists(cfg)) fail_at(cfg.string(), "no such file (the VAE's config.json)");
    b.config = io::load_json_file(cfg);
    merge(b.config, c.model.vae);
    b.vae = model::AutoencoderKL(model::VaeConfig::from_json(b.config, cfg.string()));
    const io::StateDict sd = io::StateDict::open(w);
    nn::load_weights(*b.vae, sd, {true, model::vae_translate_legacy_key});
    b.weights = sd.weights().source;
    if (fs::is_directory(w)) {
      for (const char* f : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"})
        if (fs::exists(w / f)) b.weights = w / f;
    }
    b.report = "vae <- " + vae_path;
  } else if (c.model.vae.is_object() && !c.model.vae.empty()) {
    b.config = c.model.vae;
    torch::manual_seed(seed + 1);
    b.vae = model::AutoencoderKL(model::VaeConfig::from_json(b.config, "model.vae"));
    b.report = "vae: fresh seeded init (model.vae)";
  } else if (need_vae) {
    fail("training needs a VAE (vae_model_path): the shards carry no usable latents, or stage 2 zeroes motion frames "
         "(start_ratio > 0), or validation renders videos");
  }
  return b;
}

ModelBundle build_models(const TrainConfig& c, const DataShape& shape, bool need_vae, bool load) {
  ModelBundle b;
  const uint64_t seed = c.model.init_seed ? c.model.init_seed : c.seed;
  nlohmann::json from_folder;
  io::StateDict whole;
  if (load && !c.net_path.empty()) whole = open_net(c.net_path, &from_folder);
  b.net_config = from_folder.is_null() ? net_config_for(c, shape) : from_folder;
  auto net_cfg = model::HalloNetConfig::from_json(b.net_config, "net config");
  if (c.lora.enabled() && net_cfg.lora.enabled())
    fail_at(c.net_path, "the net already carries LoRA adapters; merge them first (hallo export --merge-lora) "
                        "and fine-tune the merged net");
  if (c.stage == 2 && !net_cfg.has_audioproj) fail("stage 2 needs a net with an audio projection; {} has none", c.net_path);
  if (c.stage == 2 && net_cfg.has_audioproj && shape.audio_layers > 0 &&
      (net_cfg.audioproj.blocks != shape.audio_layers || net_cfg.audioproj.channels != shape.audio_dim))
    fail("the net's audio projection takes [{} layers x {}] features, the shards hold [{} x {}] ('{}')",
         net_cfg.audioproj.blocks, net_cfg.audioproj.channels, shape.audio_layers, shape.audio_dim,
         shape.audio_extractor);

  torch::manual_seed(seed);  // fresh layers are reproducible from the seed
  b.net = model::HalloNet(net_cfg);
  zero_init_like_upstream(b.net);

  if (!load) {
    b.report.push_back("networks built for a dry run (no weights read)");
  } else if (!c.net_path.empty()) {
    b.net->load(whole, /*strict=*/true);
    b.report.push_back("net <- " + c.net_path + " (strict)");
  } else if (c.stage == 1 && !c.base_model_path.empty()) {
    const io::StateDict sd = io::StateDict::open(sd_unet_dir(c));
    auto drop_head = [](const std::string& k) {
      return (k.rfind("conv_norm_out.", 0) == 0 || k.rfind("conv_out.", 0) == 0) ? std::string() : k;
    };
    auto none = [](const std::string&) { return false; };
    load_checked(*b.net->reference_unet, sd, "SD UNet -> reference_unet", none, drop_head);
    load_checked(*b.net->denoising_unet, sd, "SD UNet -> denoising_unet", none);
    b.report.push_back("reference_unet, denoising_unet <- " + sd_unet_dir(c).string() + "; face_locator, imageproj fresh");
  } else if (c.stage == 2 && !c.stage1_ckpt_dir.empty()) {
    const fs::path dir = c.stage1_ckpt_dir;  // exists: stage1_net_config checked it
    const io::StateDict s1 = is_model_folder(dir) ? net_state_dict(read_model_folder(dir)) : open_upstream_stage1(dir);
    load_checked(*b.net, s1, "stage-1 checkpoint", temporal_or_audio);
    std::string line = "reference_unet, denoising_unet (2D), face_locator, imageproj <- " + dir.string();
    if (!c.mm_path.empty()) {
      const io::StateDict mm = io::StateDict::open(c.mm_path);
      auto not_motion = [](const std::string& k) { return k.find("motion_modules.") == std::string::npos; };
      auto rep = load_checked(*b.net->denoising_unet, mm, "motion module checkpoint (mm_path)", not_motion);
      line += "; motion_modules <- " + c.mm_path;
    } else {
      spdlog::warn("no mm_path: the motion modules start from a fresh init (upstream starts from AnimateDiff)");
      line += "; motion_modules fresh";
    }
    b.report.push_back(line + "; audio_modules, audioproj fresh");
  } else if (c.stage == 2 && !c.base_model_path.empty()) {
    // No stage 1 at all (tests, ablations): SD weights + AnimateDiff, as HalloNet::assemble.
    const io::StateDict sd = io::StateDict::open(sd_unet_dir(c));
    const io::StateDict mm = c.mm_path.empty() ? io::StateDict() : io::StateDict::open(c.mm_path);
    b.net->assemble(sd, mm, /*strict=*/!c.mm_path.empty());
    b.report.push_back("UNets <- " + sd_unet_dir(c).string() + (c.mm_path.empty() ? "" : "; motion <- " + c.mm_path));
  } else {
    b.report.push_back(fmt::format("every network: fresh seeded init (seed {})", seed));
  }

  VaeBundle v = build_vae(c, need_vae, load);
  if (c.lora.enabled()) {
    // Adapters go on after the base weights are in; their A from the seed, B zero.
    const auto sites = nn::attach_lora(*b.net, c.lora, seed + 7);
    b.net_config["lora"] = c.lora.to_json();
    b.report.push_back(fmt::format("LoRA rank {} alpha {} on {} projections", c.lora.rank, c.lora.to_json().at("alpha").dump(),
                                   sites.size()));
  }

  b.vae = v.vae;
  b.vae_config = v.config;
  b.vae_weights = v.weights;
  if (!v.report.empty()) b.report.push_back(v.report);
  if (b.vae) {
    b.vae->eval();
    for (auto& p : b.vae->parameters()) p.set_requires_grad(false);
  }
  return b;
}

namespace {
bool stored_low(const at::Tensor& p) { return !p.requires_grad() && p.scalar_type() == at::kFloat; }
}  // namespace

FrozenSavings frozen_weight_savings(const model::HalloNet& net, const model::AutoencoderKL& vae, c10::ScalarType dtype) {
  const int64_t per_value = 4 - static_cast<int64_t>(c10::elementSize(dtype));
  FrozenSavings s;
  for (const auto& p : net->parameters())
    if (stored_low(p)) s.net += p.numel() * per_value;
  if (vae)
    for (const auto& p : vae->parameters())
      if (p.scalar_type() == at::kFloat) s.vae += p.numel() * per_value;
  return s;
}

FrozenSavings store_frozen_weights(model::HalloNet& net, model::AutoencoderKL vae, c10::ScalarType dtype) {
  const FrozenSavings s = frozen_weight_savings(net, vae, dtype);
  at::NoGradGuard no_grad;
  for (auto& p : net->parameters())
    if (stored_low(p)) p.set_data(p.detach().to(dtype));
  if (vae) vae->to(dtype);
  return s;
}

}  // namespace hallo::trainer
