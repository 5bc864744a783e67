#pragma once
// The one place that saves and restores training state. A checkpoint is a folder
// RUN_DIR/checkpoints/checkpoint-<step>/ holding
//   model/                    a model folder (trainer/model_folder.h): inference-ready
//   optimizer.safetensors     AdamW moments per trainable parameter (+ step counts)
//   rng.safetensors           the training RNG and libtorch's default generators
//   ema.safetensors           the EMA of the trainable weights (when ema is on)
//   trainer_state.json        step, data position (sampler epoch/position, bad clips),
//                             counters, and the resolved config
//   checkpoint.json           written last: every file and its size
// It is built under a temporary name and renamed when complete, so a kill leaves
// either the whole checkpoint or a temp folder (removed, with a warning, later).
// `latest` skips any checkpoint whose checkpoint.json is missing or disagrees with
// the files on disk (a torn copy), with a warning.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "trainer/adamw.h"
#include "trainer/ema.h"
#include "trainer/model_folder.h"
#include "trainer/step_rng.h"
#include "trainer/trainable.h"

namespace hallo::trainer {

struct TrainerState {
  int64_t step = 0;               // optimizer steps completed
  nlohmann::json data;            // BatchSource::position() (rank 0's)
  int world_size = 1;             // ranks that wrote it
  std::vector<nlohmann::json> data_by_rank;  // every rank's position (world_size > 1)
  std::vector<int64_t> bucket_order;  // data parallel: the reducer's learnt bucket order (may be empty)
  int consecutive_nonfinite = 0;
  int64_t skipped_steps = 0;
  nlohmann::json loss_scale;      // LossScaler::state() (fp16 / solver.loss_scale; empty: none)
  nlohmann::json config;          // the resolved TrainConfig of the run
  nlohmann::json to_json() const;
  static TrainerState from_json(const nlohmann::json& j, const std::string& where);
};

struct CheckpointWrite {
  // model/ is a Hallo model folder from `parts` and `trainable`, unless `write_model`
  // is given (the VAE stage writes a diffusers VAE folder there).
  const ModelFolderParts* parts = nullptr;
  const TrainableSet* trainable = nullptr;
  std::function<void(const std::filesystem::path& model_dir)> write_model;
  const AdamW* optimizer = nullptr;
  const Ema* ema = nullptr;  // written as ema.safetensors when set
  const StepRng* rng = nullptr;
  // Other ranks' generator states (rank r >= 1 at [r - 1]): their StepRng and default
  // CPU generator, saved as train.rank<r> / torch_cpu.rank<r>.
  std::vector<at::Tensor> other_train_rng, other_cpu_rng;
  // Sharded optimizer state (ZeRO-1): called with the temporary folder after rank 0's
  // files are written and before the manifest, so the other ranks add their
  // optimizer.rank<k>.safetensors (write_optimizer_state) and the manifest lists them.
  std::function<void(const std::filesystem::path& tmp)> before_manifest;
  int stage = 2;
  TrainerState state;
};

class CheckpointStore {
 public:
  // `dir`: RUN_DIR/checkpoints. `keep`: how many checkpoints to keep (oldest removed).
  // `cleanup`: remove temp folders a killed save left (one process of a run does it).
  CheckpointStore(std::filesystem::path dir, int keep, bool cleanup = true);

  std::filesystem::path save(const CheckpointWrite& w);
  // Newest complete checkpoint; torn ones are skipped with a warning. nullopt: none.
  std::optional<std::filesystem::path> latest() const;
  // Checkpoints in step order (complete or not).
  std::vector<std::filesystem::path> list() const;
  const std::filesystem::path& dir() const { return dir_; }

 private:
  void prune() const;
  std::filesystem::path dir_;
  int keep_;
};

// Throws naming the file when `ckpt` is not a complete checkpoint.
void verify_checkpoint(const std::filesystem::path& ckpt);

struct LoadedCheckpoint {
  std::filesystem::path dir;
  TrainerState state;
  ModelFolder model;
};
// Reads the state and the model folder (weights are applied by the caller).
LoadedCheckpoint read_checkpoint(const std::filesystem::path& ckpt);
// AdamW moments under the parameter's name, step counts in the metadata.
void write_optimizer_state(const std::filesystem::path& file, const AdamW& optimizer);

// trainer_state.json of a complete checkpoint.
TrainerState read_trainer_state(const std::filesystem::path& ckpt);
// Restores optimizer moments from `ckpt` for the parameters `params` (those with
// `owned` true, when given): from optimizer.safetensors and any optimizer.rank<k>
// shards, so a sharded checkpoint resumes sharded or not, on any number of ranks.
void restore_optimizer(const std::filesystem::path& ckpt, const std::vector<NamedParam>& params, AdamW& optimizer,
                       const std::vector<bool>* owned = nullptr);
void restore_rng(const std::filesystem::path& ckpt, StepRng& rng, int rank = 0);

std::string checkpoint_name(int64_t step);  // "checkpoint-000120"

}  // namespace hallo::trainer
