#pragma once
// The training loop of `hallo train`, top to bottom: set up (models, trainable set,
// optimizer, schedule, RNG, or everything from a checkpoint), then per step draw
// the micro-batches and their random numbers, run the shared optimisation step,
// log, checkpoint, validate; stop cleanly on SIGINT/SIGTERM.
//
// Determinism: on CPU the same config, data and seed give the same bits, and a run
// resumed from a checkpoint continues exactly as the uninterrupted run would have
// (weights, optimizer, RNG and data position are all in the checkpoint).
#include <c10/core/Device.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "trainer/batch_source.h"
#include "trainer/gradients.h"
#include "trainer/train_config.h"
#include "trainer/validator.h"

namespace hallo::trainer {

struct TrainOptions {
  std::filesystem::path run_dir;  // empty: <output_dir>/<exp_name>
  std::string resume;             // "" (fresh), "auto" (newest complete checkpoint, if any), or a checkpoint folder
  bool dry_run = false;           // print the plan, train nothing
  int plan_world_size = 1;        // --dry-run --nproc N: per-rank estimate for N ranks
  nlohmann::json audio_info;      // audio feature settings of the shards (for model folders)
  nlohmann::json prepare_info;    // the shards' prepare_config.json (face crop and masks, for model folders)
  std::filesystem::path wav2vec2; // the wav2vec2 the shards were made with, linked into model folders
  // Multi-process data parallel (trainer/dist/): this process's rank, and the reducer
  // for the trainable parameters (null: one process, LocalReducer). Rank 0 writes the
  // run folder, logs and checkpoints; every rank trains. make_reducer's flag asks for
  // sharded gradients (solver.zero_stage 2).
  int rank = 0, world_size = 1;
  // Where the networks, batches and optimizer state live (core/device.h resolves the
  // user's --device; with several ranks on CUDA, one GPU per local rank). The random
  // draws stay on the CPU generator and are copied here, so a seed means the same
  // numbers on any device.
  c10::Device device{c10::kCPU};
  std::function<std::unique_ptr<GradientReducer>(const std::vector<NamedParam>&, bool shard_gradients)> make_reducer;
};

struct TrainResult {
  int exit_code = 0;  // 0 done, 130 / 143 stopped by SIGINT / SIGTERM (after saving)
  int64_t step = 0;
  std::filesystem::path run_dir, final_model, last_checkpoint;
};

class Trainer {
 public:
  // `validator` may be null (no validation videos).
  Trainer(TrainConfig config, TrainOptions options, std::unique_ptr<BatchSource> data,
          std::unique_ptr<Validator> validator);
  ~Trainer();
  TrainResult run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The run folder a config and options imply.
std::filesystem::path run_dir_of(const TrainConfig& c, const TrainOptions& o);

}  // namespace hallo::trainer
