#include "tools/hallo/model_source.h"

#include "core/error.h"
#include "trainer/checkpoint.h"
#include "trainer/model_folder.h"

namespace hallo::cli {

namespace fs = std::filesystem;

ModelSource resolve_model_source(const fs::path& in, bool ema) {
  if (!fs::exists(in)) fail_at(in.string(), "no such run, checkpoint or model folder");
  if (trainer::is_model_folder(in)) {
    if (!ema) return {in, {}};
    const fs::path sib = in.parent_path() / (in.filename().string() + "_ema");
    if (!trainer::is_model_folder(sib))
      fail_at(in.string(), "--ema: no {} next to this model folder (train with an ema: block)", sib.filename().string());
    return {sib, {}};
  }
  if (fs::exists(in / "checkpoint.json")) {
    trainer::verify_checkpoint(in);
    if (ema && !fs::exists(in / "ema.safetensors"))
      fail_at(in.string(), "--ema: this checkpoint has no ema.safetensors (the run had no ema: block)");
    return {in / "model", ema ? in / "ema.safetensors" : fs::path()};
  }
  if (trainer::is_model_folder(in / "final")) return resolve_model_source(in / "final", ema);
  if (fs::is_directory(in / "checkpoints")) {
    trainer::CheckpointStore store(in / "checkpoints", 1 << 30, /*cleanup=*/false);
    if (const auto last = store.latest()) return resolve_model_source(*last, ema);
  }
  fail_at(in.string(), "not a run folder (final/ or checkpoints/), a checkpoint or a model folder");
}

}  // namespace hallo::cli
