#pragma once
// Builds and initialises the networks of a training run, as upstream's scripts do:
//  stage 1: both UNets from an SD1.5 UNet folder (base_model_path/unet), the face
//           locator and image projection fresh;
//  stage 2: everything from a stage-1 model folder (or upstream's four .pth files)
//           plus AnimateDiff motion modules (mm_path); audio modules and the audio
//           projection fresh;
//  any stage: a whole net from net_path (model folder, net.pth or safetensors);
//  no weights: a seeded random init (tiny configs, tests).
// "Fresh" layers follow upstream's init, including its zero-initialised outputs
// (face_locator.conv_out, motion modules' proj_out, audio modules' zero_conv_*).
// Every weight file loads strictly: each missing, unexpected or mis-shaped key is named.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "model/hallo/hallo_net.h"
#include "model/vae/autoencoder_kl.h"
#include "trainer/batch_source.h"
#include "trainer/train_config.h"

namespace hallo::trainer {

struct ModelBundle {
  model::HalloNet net{nullptr};
  nlohmann::json net_config;          // what HalloNetConfig::from_json read (saved in model folders)
  model::AutoencoderKL vae{nullptr};  // null when the run needs none and none was given
  nlohmann::json vae_config;
  std::filesystem::path vae_weights;  // the file the VAE came from; empty: random init
  std::vector<std::string> report;    // one line per part: where its weights came from
};

struct VaeBundle {
  model::AutoencoderKL vae{nullptr};  // null when none is configured and none is needed
  nlohmann::json config;
  std::filesystem::path weights;      // empty: random init
  std::string report;
};
// The VAE of a run: vae_model_path (diffusers folder or weights file, strict), else a
// seeded random init from model.vae. Parameters keep requires_grad (the VAE stage trains them).
VaeBundle build_vae(const TrainConfig& c, bool need_vae, bool load = true);

// The per-part net config a training config and its data imply.
nlohmann::json net_config_for(const TrainConfig& c, const DataShape& shape);

// `need_vae`: fail when no VAE can be built. `load`: false builds the shapes only
// (seeded init, no weight files read), for --dry-run.
ModelBundle build_models(const TrainConfig& c, const DataShape& shape, bool need_vae, bool load = true);

// Upstream's zero-initialised layers, zeroed (after a fresh construction).
void zero_init_like_upstream(model::HalloNet& net);

// solver.frozen_dtype: the net's float32 parameters that do not require grad and the VAE's
// (may be null) stored in `dtype`. Trainable weights and buffers (the motion modules'
// positional tables) stay float32, as the exported model has them.
struct FrozenSavings {
  int64_t net = 0, vae = 0;  // bytes
  int64_t total() const { return net + vae; }
};
// What store_frozen_weights would save (the dry run's estimate); changes nothing.
FrozenSavings frozen_weight_savings(const model::HalloNet& net, const model::AutoencoderKL& vae, c10::ScalarType dtype);
FrozenSavings store_frozen_weights(model::HalloNet& net, model::AutoencoderKL vae, c10::ScalarType dtype);

}  // namespace hallo::trainer
