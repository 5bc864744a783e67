#include "tools/golden/golden.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include <spdlog/spdlog.h>

#include "eval/nets/hash24.h"
#include "model/io/hf_config.h"
#include "model/nn/loader.h"

namespace hallo::golden {

namespace fs = std::filesystem;

io::StateDict GoldenCase::metric_weights() const {
  if (weights) return *weights;
  const fs::path cfg = dir / (name + ".config.json");
  if (!config.contains("_harness") || !config["_harness"].contains("weights_rule"))
    fail_at(cfg.string(), "no {}.weights.safetensors and no _harness.weights_rule to generate the weights", name);
  return eval::hash24_state_dict(config["_harness"], cfg.string());
}

const at::Tensor& GoldenCase::input(const std::string& key) const {
  auto it = io.find(key);
  if (it == io.end()) fail_at((dir / (name + ".io.safetensors")).string(), "missing tensor '{}'", key);
  return it->second;
}

std::vector<at::Tensor> GoldenCase::input_list(const std::string& prefix) const {
  std::vector<at::Tensor> out;
  for (size_t i = 0;; ++i) {
    auto it = io.find(prefix + "." + std::to_string(i));
    if (it == io.end()) break;
    out.push_back(it->second);
  }
  return out;
}

void GoldenCase::load_into(torch::nn::Module& m, std::function<std::string(const std::string&)> rename) const {
  if (!weights) fail_at((dir / (name + ".weights.safetensors")).string(), "no such file (this golden needs weights)");
  nn::LoadOptions opts;
  opts.strict = strict;
  opts.rename = std::move(rename);
  auto rep = nn::load_weights(m, *weights, opts);
  if (!rep.ok()) spdlog::warn("non-strict load: {}", rep.summary());
}

GoldenCase load_case(const fs::path& dir, const std::string& name) {
  GoldenCase c;
  c.name = name;
  c.dir = dir;
  const fs::path cfg = dir / (name + ".config.json");
  c.config = io::load_json_file(cfg);
  const fs::path w = dir / (name + ".weights.safetensors");
  if (fs::exists(w)) c.weights = io::StateDict::open(w);
  io::StateDict iosd = io::StateDict::open(dir / (name + ".io.safetensors"));
  for (const auto& k : iosd.keys()) c.io[k] = iosd.tensor(k);
  return c;
}

const RunnerEntry& find_runner(const GoldenCase& c) {
  std::string cls = c.config.is_object() ? c.config.value("_class_name", std::string()) : std::string();
  // A UNet2D recorded through ReferenceAttentionControl in write mode is Hallo's ReferenceNet.
  if (cls == "UNet2DConditionModel" && c.config.contains("_harness") && c.config["_harness"].is_object() &&
      c.config["_harness"].contains("reference_control"))
    cls = "hallo_reference_unet";
  // A config holding net + vae + scheduler records a whole pipeline run.
  if (c.config.is_object() && c.config.contains("net") && c.config.contains("vae") && c.config.contains("scheduler"))
    cls = "hallo_pipeline";
  // One optimisation step of upstream training: per-part net configs plus the training scheduler.
  if (c.config.is_object() && c.config.contains("net") && c.config.contains("train_noise_scheduler"))
    cls = "hallo_train_step";
  // HF transformers configs carry model_type instead of diffusers' _class_name.
  if (cls.empty() && c.config.is_object() && c.config.value("model_type", std::string()) == "wav2vec2") cls = "wav2vec2";
  for (const auto& r : runners())
    if (r.key == c.name) return r;
  for (const auto& r : runners())
    if (!cls.empty() && r.key == cls) return r;
  fail_at((c.dir / (c.name + ".config.json")).string(), "no runner for golden '{}' (_class_name '{}'); see hallo golden --list",
          c.name, cls);
}

at::Tensor produced_for(const std::string& key, const at::Tensor& want, const Outputs& produced, Comparison& r) {
  r.key = key;
  r.exact = !at::isFloatingType(want.scalar_type());
  auto it = produced.find(key);
  if (it == produced.end()) {
    r.note = "not produced";
    return {};
  }
  at::Tensor got = it->second.detach().to(at::kCPU);
  if (got.sizes() != want.sizes()) {
    r.note = "shape " + c10::str(got.sizes()) + " vs golden " + c10::str(want.sizes());
    return {};
  }
  return got;
}

std::vector<Comparison> compare(const GoldenCase& c, const Outputs& produced, double rel_tol) {
  std::vector<Comparison> out;
  for (const auto& [key, want] : c.io) {
    if (key.rfind("out.", 0) != 0) continue;
    Comparison r;
    const at::Tensor got = produced_for(key, want, produced, r);
    if (!got.defined()) {
      out.push_back(r);
      continue;
    }
    if (want.numel() == 0) {
      r.ok = true;
      out.push_back(r);
      continue;
    }
    if (r.exact) {
      r.ok = got.scalar_type() == want.scalar_type() && at::equal(got, want);
      r.max_abs = (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
      if (got.scalar_type() != want.scalar_type()) r.note = "dtype differs";
    } else {
      const auto g = got.to(at::kDouble), w = want.to(at::kDouble);
      r.max_abs = (g - w).abs().max().item<double>();
      r.max_ref = w.abs().max().item<double>();
      r.rel = r.max_ref > 0 ? r.max_abs / r.max_ref : r.max_abs;
      r.ok = std::isfinite(r.rel) && r.rel <= rel_tol;
    }
    out.push_back(r);
  }
  return out;
}

const std::vector<RunnerEntry>& runners() {
  static const std::vector<RunnerEntry> r = {
      {"formats_probe", "dtype decoding of F32/F16/BF16/I64/0-dim/empty tensors", run_formats_probe, 0.0},
      {"DDIMScheduler", "DDIM set_timesteps + step loop (ddim_*)", run_ddim, 1e-5},
      {"UNet2DConditionModel", "diffusers UNet2DConditionModel forward", run_unet2d},
      {"AutoencoderKL", "AutoencoderKL encode/decode + Hallo latent/frame conversions", run_vae},
      {"FaceLocator", "Hallo FaceLocator (inflated conv stack) on a face mask video", run_face_locator},
      {"ImageProjModel", "Hallo face-embedding projection -> context tokens (cond and uncond)", run_image_proj},
      {"AudioProjModel", "Hallo audio-window projection -> per-frame audio tokens", run_audio_proj},
      {"hallo_reference_unet", "Hallo ReferenceNet in write mode: last up-block features + reference bank", run_reference_unet},
      {"UNet3DConditionModel", "Hallo denoising UNet3D (reference read, audio + motion modules)", run_unet3d},
      {"wav2vec2", "wav2vec2 (HF layout) + Hallo's frame-rate interpolation, layer stack and 5-frame windows", run_wav2vec2},
      {"hallo_pipeline", "one clip of Hallo inference: projections, ReferenceNet, DDIM + CFG, VAE decode", run_pipeline, 1e-3},
      {"hallo_train_step", "one optimisation step of upstream stage-1/2 training (train_*): loss, gradients, AdamW",
       run_train_step, 1e-5, check_train_step},
      {"pytorch_fid.inception.InceptionV3", "pytorch-fid InceptionV3 features (2048/768/192/64) on procedural weights",
       run_fid_inception, 1e-4, check_fid_inception},
      {"InceptionI3d", "I3D logits (VideoGPT eps 1e-5 and piergiaj eps 1e-3) on procedural weights", run_i3d},
      {"SyncNetModel.S", "SyncNet towers + syncnet_python evaluate (MFCC, windows, offsets, Sync-C/D)", run_syncnet},
      {"syncnet_eval_math", "syncnet_python's offset arithmetic (calc_pdist, min, median, medfilt)", run_syncnet_eval_math},
      {"python_speech_features.mfcc", "python_speech_features MFCC as SyncNet calls it", run_mfcc, 1e-9},
      {"frechet", "pytorch-fid statistics and Frechet distance (float64, eps fallback)", run_frechet, 1e-9},
  };
  return r;
}

}  // namespace hallo::golden
