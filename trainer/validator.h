#pragma once
// Validation during training: one held-out clip rendered with the current weights
// through the shared one-clip inference core, written as an mp4 with its audio. The
// implementation needs the media libraries (trainer/data/); the loop sees this.
#include <cstdint>
#include <filesystem>

#include "trainer/step.h"

namespace hallo::trainer {

class Validator {
 public:
  virtual ~Validator() = default;
  // Renders into `out_dir` and returns the file written. Must not touch the training RNG.
  virtual std::filesystem::path render(StepModels& models, int64_t step, const std::filesystem::path& out_dir) = 0;
};

}  // namespace hallo::trainer
