#pragma once
// A model folder: everything inference needs to run a trained Hallo without
// further flags. `hallo train` writes one into every checkpoint and as its final
// output; `hallo animate --model DIR` (and stage 2's stage1_ckpt_dir, and any
// net_path) read it.
//
//   model.json                 manifest: format, stage, step, and the parts below
//   net_config.json            HalloNetConfig JSON (per-part configs)
//   net.frozen.safetensors     frozen parameters and buffers (net.pth key layout);
//                              hard-linked from the run's copy, written once
//   net.trainable.safetensors  the trained parameters (net.pth key layout)
//   vae/config.json, vae/diffusion_pytorch_model.safetensors
//   audio.json                 the audio feature settings the shards were made with
//                              (`hallo prepare`'s audio section, loadable as an
//                              AudioPipelineConfig, plus feature_extractor_id /
//                              feature_layers / feature_dim); a wav2vec2 model,
//                              when used, is linked under audio/
//   model.json "data"          frame size, frames per clip, motion frames, fps and
//                              "prepare": the face crop / mask settings of the shards
// Files that do not change between checkpoints are hard links (copies across file
// systems), so a checkpoint costs the trained weights only.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "model/io/state_dict.h"
#include "trainer/trainable.h"

namespace hallo::trainer {

inline constexpr const char* kModelManifest = "model.json";

struct ModelFolderParts {
  nlohmann::json net_config;
  std::filesystem::path frozen_weights;  // written once per run; empty: nothing frozen
  nlohmann::json vae_config;             // null: no VAE (never for a usable model)
  std::filesystem::path vae_weights;     // a .safetensors file to link
  nlohmann::json audio;                  // audio feature settings (see above)
  std::filesystem::path wav2vec2;        // file or folder to link under audio/, or empty
  nlohmann::json data;                   // frame size, frames per clip, motion frames, fps
};

// Writes `dir` (which must not exist) through a temp folder renamed at the end.
// `trainable` are the parameters saved as net.trainable.safetensors.
void write_model_folder(const std::filesystem::path& dir, const ModelFolderParts& parts,
                        const std::vector<NamedParam>& trainable, int stage, int64_t step,
                        const nlohmann::json& train_config);

// A diffusers VAE folder (config.json, diffusion_pytorch_model.safetensors) from the
// VAE's parameters and buffers: what `stage: vae` writes and vae_model_path reads.
// `dir` must not exist; written through a temp folder renamed at the end.
void write_vae_folder(const std::filesystem::path& dir, const nlohmann::json& config,
                      const std::vector<NamedParam>& weights);

// Writes the frozen parameters and buffers once (net.pth layout).
void write_frozen_weights(const std::filesystem::path& file, const std::vector<NamedParam>& frozen);

struct ModelFolder {
  std::filesystem::path dir;
  nlohmann::json manifest, net_config;
  std::vector<std::filesystem::path> net_weights;
  std::filesystem::path vae_dir;  // empty when the folder has no VAE
  nlohmann::json audio;
  int stage = 0;
  int64_t step = 0;
};

bool is_model_folder(const std::filesystem::path& dir);
ModelFolder read_model_folder(const std::filesystem::path& dir);  // throws naming the file and problem
// All of the net's weights as one state dict (net.pth layout).
io::StateDict net_state_dict(const ModelFolder& m);
// The parts to write a new model folder with the same VAE, audio settings and data
// geometry as `m` (frozen_weights empty: the caller passes every net weight).
ModelFolderParts parts_of(const ModelFolder& m);

// Hard link, or copy when linking is impossible (other file system). Target must not exist.
void link_or_copy(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace hallo::trainer
