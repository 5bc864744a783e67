#pragma once
// Where training batches come from, seen by the training loop: the HDF5 shard
// samplers in practice (trainer/data/, which needs the media libraries), anything
// else in tests. The loop saves position() in every checkpoint and seek()s to it
// on resume, so the data stream continues exactly.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trainer/batch.h"

namespace hallo::trainer {

// What the data says about the networks it can train.
struct DataShape {
  int64_t audio_layers = 0, audio_dim = 0;  // per-frame audio features (stage 2)
  int64_t face_emb_dim = 512;
  int64_t latent_channels = 0;  // > 0: batches carry VAE posteriors of this many channels
  int height = 0, width = 0;
  std::string audio_extractor;  // id stored with the shards (never mixed)
};

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual TrainBatch next(int batch_size) = 0;
  virtual nlohmann::json position() const = 0;
  virtual void seek(const nlohmann::json& position) = 0;
  // A position saved by a run of `from_world` ranks, for a run of `to_world` ranks
  // (resume with another world size: the same number of samples counts as consumed).
  virtual nlohmann::json remap_position(const nlohmann::json& position, int from_world, int to_world) const {
    return position;
  }
  virtual DataShape shape() const = 0;
  virtual size_t size() const = 0;             // clips this rank samples from
  virtual std::vector<std::string> bad_clips() const { return {}; }  // messages naming shard and clip
  // A fixed batch from held-out clips (never trained on), the same at every call;
  // nullopt when the source has none. The trainer tracks its loss with fixed noise.
  virtual std::optional<TrainBatch> heldout_batch(int batch_size) { return std::nullopt; }
  virtual std::string describe() const = 0;
};

}  // namespace hallo::trainer
