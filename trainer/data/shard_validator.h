#pragma once
// Validation from a held-out shard clip: its first frame is the reference (and, as
// in the first clip of upstream inference, the motion frames), its audio features,
// masks and face embedding condition one clip of n_sample_frames frames rendered
// through the one-clip inference core (model/hallo/clip_pipeline.h, the code
// `hallo animate` uses); the mp4 gets the clip's own audio from its source video.
#include <filesystem>
#include <memory>
#include <string>

#include "trainer/train_config.h"
#include "trainer/validator.h"

namespace hallo::trainer {

class ShardValidator : public Validator {
 public:
  // `clip`: index or clip id in `shard_dir` ("" = the last clip).
  ShardValidator(const TrainConfig& cfg, const std::filesystem::path& shard_dir, const std::string& clip);
  ~ShardValidator() override;
  std::filesystem::path render(StepModels& models, int64_t step, const std::filesystem::path& out_dir) override;
  const std::string& clip_id() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The clip id a validation setting picks in `shard_dir` (for excluding it from training).
std::string validation_clip_id(const std::filesystem::path& shard_dir, const std::string& clip);

}  // namespace hallo::trainer
