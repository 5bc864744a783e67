#pragma once
// `hallo animate`'s work with the model loaded once: for each job, portrait +
// speech file -> mp4 (H.264, the original audio), written under a temp name and
// renamed, so a failed job leaves no file behind.
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "inference/animate_config.h"
#include "inference/model_loader.h"

namespace hallo::inference {

struct AnimateJob {
  std::filesystem::path ref, audio, out;
  std::optional<uint64_t> seed;  // overrides the config's
  // > 0: the lip-sync control. The audio features are shuffled in blocks of this
  // many frames (shuffle_audio_blocks, seeded by the seed); the mp4 keeps the
  // original audio, so scoring it against its own track measures chance.
  int shuffle_audio_blocks = 0;
};

// --jobs list.jsonl: one {"ref": ..., "audio": ..., "out": ..., "seed": ...} per line;
// relative paths are taken from the list's folder. Errors name the file and line.
std::vector<AnimateJob> read_job_list(const std::filesystem::path& jsonl);

struct AnimateResult {
  std::filesystem::path video;
  int64_t frames = 0, clips = 0;
  double audio_seconds = 0, seconds = 0;
  bool face_found = false;
};

class AnimateSession {
 public:
  // `arcface_onnx`: face embedding model (empty: the model folder's, else zeros with a warning).
  AnimateSession(LoadedModel model, AnimateConfig cfg, std::string arcface_onnx = "");
  ~AnimateSession();
  AnimateResult run(const AnimateJob& job);
  const AnimateConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::inference
