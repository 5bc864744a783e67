#pragma once
// Which model folder a command means when given a run, a checkpoint or a model folder
// (`hallo export`, `hallo lora merge`).
#include <filesystem>

namespace hallo::cli {

struct ModelSource {
  std::filesystem::path model;  // the model folder to read
  std::filesystem::path ema;    // ema.safetensors to apply over the trainable weights (checkpoints), or empty
};

//   RUN_DIR        its final/ model folder (final_ema/ with `ema`); without final/, the
//                  newest complete checkpoint
//   CHECKPOINT     its model/ folder; `ema` applies the checkpoint's ema.safetensors
//   MODEL_FOLDER   as is; `ema` needs the <folder>_ema sibling a run writes
// Throws naming the path when it is none of these.
ModelSource resolve_model_source(const std::filesystem::path& in, bool ema);

}  // namespace hallo::cli
