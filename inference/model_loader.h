#pragma once
// The weights `hallo animate` runs: a model folder (what `hallo train` writes into
// every checkpoint and run), or upstream's pretrained_models layout (--net net.pth,
// --vae sd-vae-ft-mse, --wav2vec2 wav2vec2-base-960h, --motion-module mm_sd_v15_v2.ckpt).
// Every file loads strictly; a mismatch names the file and the keys.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "data/audio/audio_pipeline.h"
#include "model/hallo/hallo_net.h"
#include "model/vae/autoencoder_kl.h"

namespace hallo::inference {

struct UpstreamPaths {
  std::filesystem::path net;            // net.pth (or .safetensors) in net.pth key layout
  std::filesystem::path net_config;     // optional HalloNetConfig JSON (default: SD1.5 sizes, Hallo's modules)
  std::filesystem::path vae;            // diffusers VAE folder or weights file
  std::filesystem::path wav2vec2;       // HF wav2vec2 folder (empty: the model folder's audio settings)
  std::filesystem::path motion_module;  // AnimateDiff checkpoint, loaded before net.pth (which overrides it)
};

struct LoadedModel {
  model::HalloNet net{nullptr};
  model::AutoencoderKL vae{nullptr};
  audio::AudioPipelineConfig audio;
  // Training geometry (0 when unknown): width, height, frames per clip, motion frames, fps.
  int width = 0, height = 0, frames = 0, motion_frames = 0;
  double fps = 0;
  nlohmann::json prepare;  // the training data's face crop / mask settings (may be null)
  std::string source;      // what was loaded, for logs
};

LoadedModel load_model_folder(const std::filesystem::path& dir);
LoadedModel load_upstream(const UpstreamPaths& p);

}  // namespace hallo::inference
