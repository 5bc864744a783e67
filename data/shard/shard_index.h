#pragma once
// <dir>/index.json: which shard files make up a dataset, their size and
// whole-file FNV-1a, and per clip what the samplers need to plan batches
// without opening any HDF5 file (frame counts, sizes, audio feature shapes).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hallo::data {

inline constexpr const char* kIndexFileName = "index.json";

struct ShardIndexEntry {
  std::string shard;    // file name inside the dataset directory
  std::string clip_id;
  int num_frames = 0;
  int height = 0, width = 0;
  std::string frame_storage;    // "jpeg" or "raw"
  std::string audio_extractor;  // "" when the clip has no audio features
  int audio_layers = 0, audio_dim = 0;
  int face_emb_dim = 0;         // 0 when absent
  bool has_masks = false;       // face_region and all 4 levels of lip/face/pose masks
  uint64_t checksum = 0;        // the clip checksum stored in the shard
};

struct ShardFileInfo {
  std::string file;
  uint64_t size = 0;
  uint64_t fnv1a64 = 0;  // of the whole file
  std::vector<ShardIndexEntry> clips;
};

class ShardIndex {
 public:
  // Reads <dir>/index.json; throws hallo::Error naming the file on any problem.
  static ShardIndex load(const std::filesystem::path& dir);

  const std::vector<ShardIndexEntry>& clips() const { return clips_; }
  const std::vector<ShardFileInfo>& shards() const { return shards_; }
  // False while a writer is still adding shards (or was killed before finish()).
  bool complete() const { return complete_; }

  // Writer side.
  void add_shard(ShardFileInfo info);
  void set_complete(bool c) { complete_ = c; }
  std::string to_json_text() const;
  void save(const std::filesystem::path& dir) const;  // atomic replace of index.json

 private:
  std::vector<ShardFileInfo> shards_;
  std::vector<ShardIndexEntry> clips_;  // all shards' clips, in shard order
  bool complete_ = false;
};

// "shard-00042.h5" <-> 42.
std::string shard_file_name(int number);
bool parse_shard_file_name(const std::string& name, int* number);

}  // namespace hallo::data
