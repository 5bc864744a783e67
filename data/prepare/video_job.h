#pragma once
// One input video through `hallo prepare`: analyse (faces, motion, audio) on
// small frames, clean, cut clips, then re-decode at full resolution and build
// each clip's record (crop, masks, embedding, features, latents). Analysis keeps
// per-frame numbers only (and FaceTracker's few frames); clip building holds
// one clip of raw frames, encodes it and parks it in a ClipSpool file, so a
// worker's memory does not grow with the video's length.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "data/prepare/prepare_config.h"
#include "data/shard/clip_record.h"
#include "data/shard/clip_spool.h"
#include "data/shard/shard_writer.h"

namespace hallo::data {

// Per-thread heavy objects (dlib models, ONNX nets, wav2vec2, VAE): created once
// per worker, never shared across threads.
class PrepareWorker {
 public:
  explicit PrepareWorker(const PrepareConfig& cfg);
  ~PrepareWorker();
  PrepareWorker(const PrepareWorker&) = delete;
  PrepareWorker& operator=(const PrepareWorker&) = delete;

  struct Result {
    std::string video;                // input path
    std::string status;               // "accepted" | "rejected" | "error"
    std::string reason;               // whole-video rejection / error reason
    std::string error;                // the error message for status "error"
    std::shared_ptr<ClipSpool> clips;  // in order, encoded for the shard writer, on disk; null: none
    std::vector<std::string> clip_ids;
    double seconds = 0, kept_seconds = 0;
    nlohmann::json rejections = nlohmann::json::array();  // segment-level {begin, end, reason, detail}
  };
  // `skip`: clip ids already stored (resume); those are listed but not built.
  // The clips' spool file goes to `spool_dir` (the dataset directory).
  Result process(const std::filesystem::path& video, const std::string& video_key, const std::set<std::string>& skip,
                 const std::filesystem::path& spool_dir);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Stable dataset key for a video: its stem, made unique by the caller when needed.
std::string video_key_for(const std::filesystem::path& video);

}  // namespace hallo::data
