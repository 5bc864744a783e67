#pragma once
// Reads clips back from a shard directory. Shards are opened lazily (at most
// a few dozen at once); every read verifies checksums: the clip checksum over
// attributes and all non-frame datasets, and each frame's own checksum.
#include <filesystem>
#include <memory>
#include <vector>

#include "data/shard/clip_record.h"
#include "data/shard/shard_index.h"

namespace hallo::data {

class ShardReader {
 public:
  explicit ShardReader(std::filesystem::path dir);  // loads index.json
  ~ShardReader();
  ShardReader(const ShardReader&) = delete;
  ShardReader& operator=(const ShardReader&) = delete;

  const ShardIndex& index() const;
  const std::filesystem::path& dir() const;
  size_t size() const { return index().clips().size(); }

  // Full record; frames=false skips reading and decoding the frames (all
  // other fields are still read and verified). Thread-safe.
  ClipRecord read_clip(size_t i, bool frames = true) const;
  // One frame (only its bytes are read and decoded), CV_8UC3 RGB.
  cv::Mat read_frame(size_t clip, int frame) const;
  // Several frames of one clip, in the given order (repeats allowed).
  std::vector<cv::Mat> read_frames(size_t clip, const std::vector<int>& frames) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::data
