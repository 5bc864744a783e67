#pragma once
// Training batches from `hallo prepare` shard directories, through the stage-1 /
// stage-2 samplers, in the layout the step consumes (trainer/batch.h).
//
// Several directories: each batch comes from one directory, picked with
// probability proportional to its clip count by a counter-based draw on
// (seed, rank, batch number), so the stream is reproducible and resumable.
// All directories must agree on frame size and audio features.
#include <memory>
#include <string>
#include <vector>

#include "data/dataset/samplers.h"
#include "trainer/batch_source.h"
#include "trainer/train_config.h"

namespace hallo::trainer {

struct ShardSourceOptions {
  std::vector<std::string> dirs;
  int stage = 2;
  data::SamplerConfig sampler;
  std::string latents = "auto";  // auto | shards | vae (see DataConfig::latents)
  // Held-out clip for the fixed evaluation batch (exclude it from `sampler` too).
  std::string heldout_dir, heldout_id;
};

// Sampler settings a training config implies for one rank.
ShardSourceOptions shard_source_options(const TrainConfig& c, int rank = 0, int world_size = 1);

class ShardSource : public BatchSource {
 public:
  explicit ShardSource(ShardSourceOptions o);
  ~ShardSource() override;

  TrainBatch next(int batch_size) override;
  nlohmann::json position() const override;
  void seek(const nlohmann::json& position) override;
  nlohmann::json remap_position(const nlohmann::json& position, int from_world, int to_world) const override;
  DataShape shape() const override { return shape_; }
  size_t size() const override;
  std::vector<std::string> bad_clips() const override;
  std::optional<TrainBatch> heldout_batch(int batch_size) override;
  std::string describe() const override;
  size_t total_clips() const;  // clips in the directories (all ranks)

 private:
  struct Dir;
  TrainBatch next_from(Dir& d, int batch_size);
  ShardSourceOptions o_;
  std::vector<std::unique_ptr<Dir>> dirs_;
  std::unique_ptr<Dir> heldout_;
  std::optional<TrainBatch> heldout_cache_;
  DataShape shape_;
  bool use_latents_ = false;
  uint64_t batches_ = 0;
};

}  // namespace hallo::trainer
