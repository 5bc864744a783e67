#include "data/shard/shard_index.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/shard/checksum.h"

namespace hallo::data {

namespace {

constexpr const char* kFormat = "hallo-shards";
constexpr int kVersion = 1;

nlohmann::json entry_json(const ShardIndexEntry& e) {
  return {{"id", e.clip_id},
          {"num_frames", e.num_frames},
          {"height", e.height},
          {"width", e.width},
          {"frame_storage", e.frame_storage},
          {"audio_extractor", e.audio_extractor},
          {"audio_layers", e.audio_layers},
          {"audio_dim", e.audio_dim},
          {"face_emb_dim", e.face_emb_dim},
          {"has_masks", e.has_masks},
          {"checksum", hex64(e.checksum)}};
}

template <typename T>
T field(const nlohmann::json& j, const char* name, const std::string& where) {
  auto it = j.find(name);
  if (it == j.end()) fail_at(where, "missing field '{}'", name);
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_at(where, "field '{}' has the wrong type", name);
  }
}

}  // namespace

std::string shard_file_name(int number) { return fmt::format("shard-{:05d}.h5", number); }

bool parse_shard_file_name(const std::string& name, int* number) {
  // Exactly "shard-" + 5+ digits + ".h5".
  if (name.size() < 14 || name.rfind("shard-", 0) != 0 || name.substr(name.size() - 3) != ".h5")
    return false;
  const std::string digits = name.substr(6, name.size() - 9);
  if (digits.size() < 5 || digits.size() > 9) return false;
  for (char c : digits)
    if (c < '0' || c > '9') return false;
  *number = std::stoi(digits);
  return true;
}

void ShardIndex::add_shard(ShardFileInfo info) {
  for (auto& c : info.clips) c.shard = info.file;
  clips_.insert(clips_.end(), info.clips.begin(), info.clips.end());
  shards_.push_back(std::move(info));
}

std::string ShardIndex::to_json_text() const {
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& s : shards_) {
    nlohmann::json clips = nlohmann::json::array();
    for (const auto& c : s.clips) clips.push_back(entry_json(c));
    shards.push_back({{"file", s.file}, {"size", s.size}, {"fnv1a64", hex64(s.fnv1a64)},
                      {"clips", std::move(clips)}});
  }
  nlohmann::json j = {{"format", kFormat}, {"version", kVersion}, {"complete", complete_},
                      {"shards", std::move(shards)}};
  return j.dump(1) + "\n";
}

void ShardIndex::save(const std::filesystem::path& dir) const {
  write_file_atomic(dir / kIndexFileName, to_json_text());
}

ShardIndex ShardIndex::load(const std::filesystem::path& dir) {
  const auto path = dir / kIndexFileName;
  const std::string where = path.string();
  std::ifstream in(path);
  if (!in) fail_at(where, "cannot open (is this a shard directory written by `hallo prepare`?)");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) fail_at(where, "not valid JSON");
  if (field<std::string>(j, "format", where) != kFormat)
    fail_at(where, "not a hallo shard index (format is not '{}')", kFormat);
  if (const int v = field<int>(j, "version", where); v != kVersion)
    fail_at(where, "index version {} is not supported (expected {})", v, kVersion);
  ShardIndex idx;
  idx.complete_ = field<bool>(j, "complete", where);
  const auto shards = field<nlohmann::json>(j, "shards", where);
  if (!shards.is_array()) fail_at(where, "'shards' is not an array");
  for (size_t si = 0; si < shards.size(); ++si) {
    const auto& s = shards[si];
    const std::string sw = fmt::format("{} (shards[{}])", where, si);
    if (!s.is_object()) fail_at(sw, "not an object");
    ShardFileInfo info;
    info.file = field<std::string>(s, "file", sw);
    int number = 0;
    if (!parse_shard_file_name(info.file, &number))
      fail_at(sw, "file name '{}' is not shard-NNNNN.h5", info.file);
    info.size = field<uint64_t>(s, "size", sw);
    info.fnv1a64 = parse_hex64(field<std::string>(s, "fnv1a64", sw), sw);
    const auto clips = field<nlohmann::json>(s, "clips", sw);
    if (!clips.is_array()) fail_at(sw, "'clips' is not an array");
    for (size_t ci = 0; ci < clips.size(); ++ci) {
      const auto& c = clips[ci];
      const std::string cw = fmt::format("{} (shards[{}].clips[{}])", where, si, ci);
      if (!c.is_object()) fail_at(cw, "not an object");
      ShardIndexEntry e;
      e.clip_id = field<std::string>(c, "id", cw);
      e.num_frames = field<int>(c, "num_frames", cw);
      e.height = field<int>(c, "height", cw);
      e.width = field<int>(c, "width", cw);
      e.frame_storage = field<std::string>(c, "frame_storage", cw);
      e.audio_extractor = field<std::string>(c, "audio_extractor", cw);
      e.audio_layers = field<int>(c, "audio_layers", cw);
      e.audio_dim = field<int>(c, "audio_dim", cw);
      e.face_emb_dim = field<int>(c, "face_emb_dim", cw);
      e.has_masks = field<bool>(c, "has_masks", cw);
      e.checksum = parse_hex64(field<std::string>(c, "checksum", cw), cw);
      if (e.num_frames <= 0 || e.height <= 0 || e.width <= 0)
        fail_at(cw, "clip '{}' has an invalid shape", e.clip_id);
      info.clips.push_back(std::move(e));
    }
    idx.add_shard(std::move(info));
  }
  return idx;
}

}  // namespace hallo::data
