#pragma once
// Writes prepared clips into checksummed HDF5 shards (layout: data/README.md).
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "data/shard/clip_codec.h"
#include "data/shard/clip_record.h"
#include "data/shard/shard_index.h"

namespace hallo::data {

struct ShardWriterConfig {
  FrameStorage frames = FrameStorage::Jpeg;
  int jpeg_quality = 95;
  int clips_per_shard = 64;
  int compression = 4;  // gzip level (0 = none) for raw frames, masks and features
};

// A clip already validated and encoded (JPEG/float16/checksums), ready to be
// written: pipelines encode in parallel and commit in order, holding only
// compressed bytes in between.
struct EncodedShardClip {
  std::string id;
  EncodedClip data;
  ShardIndexEntry entry;
};

class ShardWriter {
 public:
  // Shards are <dir>/shard-00000.h5 ...; each is written to a temp name and
  // renamed when complete, and index.json is rewritten (atomically) after every
  // completed shard, so a killed run keeps all finished shards.
  // Resume: an existing shard listed in <dir>/index.json with matching size and
  // checksum is kept; anything else shard-like in <dir> (stale temp files,
  // unlisted or damaged shards) is removed. One writer per directory (flock).
  ShardWriter(std::filesystem::path dir, ShardWriterConfig cfg = {});
  // Without finish(): the open (partial) shard's temp file is removed.
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  // Thread-safe: validation and JPEG/float16 encoding run in the calling
  // thread, the HDF5 write under an internal mutex. Throws hallo::Error for an
  // invalid record or a duplicate id; after a failed HDF5 write the writer
  // refuses further clips (the partial shard is dropped on destruction).
  void add(const ClipRecord& clip);
  // The two halves of add(): encode() is pure (any thread, no writer needed);
  // add_encoded() writes under the writer's mutex.
  static EncodedShardClip encode(const ClipRecord& clip, const ShardWriterConfig& cfg);
  void add_encoded(const EncodedShardClip& clip);
  // Closes the last shard and marks index.json complete. Idempotent.
  void finish();
  // Ids already in completed shards (for resume: skip these clips).
  std::set<std::string> existing_clip_ids() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::data
