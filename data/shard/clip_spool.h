#pragma once
// ClipSpool: a video's encoded clips parked on disk between the parallel
// worker that builds them and the in-order commit to the shards. Without it a
// worker would hold every clip of its video until the videos before it were
// committed: 50-80 KB per 512 px frame (JPEG, float16 masks and features), ~1 GB
// for a 10-minute video, times the videos in flight. With it a worker holds one clip; the file is read back one
// clip at a time.
//
// The file is private to one run (native byte order, no versioning): it lives
// next to the shards as <name>.tmp-spool, is removed when the spool is
// destroyed, and a run removes stale ones (a killed run's) at start.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "data/shard/shard_writer.h"

namespace hallo::data {

class ClipSpool {
 public:
  explicit ClipSpool(std::filesystem::path file);
  ~ClipSpool();  // removes the file
  ClipSpool(const ClipSpool&) = delete;
  ClipSpool& operator=(const ClipSpool&) = delete;

  // Appends a clip (throws hallo::Error naming the file when the disk is full).
  void push(const EncodedShardClip& clip);
  // Reads the clips back in push order, one in memory at a time; then the file is gone.
  void drain(const std::function<void(const EncodedShardClip&)>& f);

  size_t size() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  const std::filesystem::path& file() const { return file_; }

  static constexpr const char* kSuffix = ".tmp-spool";
  // Removes every *.tmp-spool file directly inside `dir`; returns how many.
  static int remove_stale(const std::filesystem::path& dir);

 private:
  std::filesystem::path file_;
  std::ofstream out_;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace hallo::data
