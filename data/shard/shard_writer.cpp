#include "data/shard/shard_writer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "core/error.h"
#include "data/shard/checksum.h"
#include "data/shard/clip_codec.h"
#include "data/shard/h5_file.h"
#include "data/shard/shard_index.h"

namespace hallo::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kShardFormat = "hallo-shard";
constexpr int64_t kShardVersion = 1;
std::atomic<unsigned> g_temp_counter{0};

bool is_temp_shard_name(const std::string& name) {
  const auto pos = name.find(".h5.tmp-");
  int n = 0;
  return pos != std::string::npos && parse_shard_file_name(name.substr(0, pos + 3), &n);
}

void fsync_path(const fs::path& p, bool directory) {
  const int fd = ::open(p.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;  // best effort: the data itself was written successfully
  ::fsync(fd);
  ::close(fd);
}

ShardIndexEntry index_entry(const ClipRecord& c, FrameStorage storage, uint64_t checksum) {
  ShardIndexEntry e;
  e.clip_id = c.id;
  e.num_frames = c.num_frames;
  e.height = c.height;
  e.width = c.width;
  e.frame_storage = frame_storage_name(storage);
  e.audio_extractor = c.audio_extractor;
  e.audio_layers = c.audio_layers;
  e.audio_dim = c.audio_dim;
  e.face_emb_dim = static_cast<int>(c.face_emb.size());
  e.has_masks = !c.face_region.empty() && c.lip_masks.size() == kMaskLevels &&
                c.face_masks.size() == kMaskLevels && c.pose_masks.size() == kMaskLevels;
  e.checksum = checksum;
  return e;
}

}  // namespace

struct ShardWriter::Impl {
  fs::path dir;
  ShardWriterConfig cfg;
  std::string where;  // dir, for messages
  int lock_fd = -1;

  mutable std::mutex mu;
  ShardIndex index;             // completed shards (kept + written by this run)
  std::set<std::string> ids;    // every id in index + the open shard
  int next_number = 0;
  bool finished = false;
  bool failed = false;

  // The open shard.
  h5::Handle file, clips_group;
  fs::path temp_path, final_path;
  ShardFileInfo current;

  void take_lock();
  void resume();
  void open_shard();
  void write_clip(const EncodedClip& e, const std::string& id);
  void close_shard();
  void drop_open_shard();
};

void ShardWriter::Impl::take_lock() {
  const fs::path lock_path = dir / ".writer.lock";
  lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) fail_at(lock_path.string(), "cannot create lock file: {}", std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    lock_fd = -1;
    fail_at(where, "another shard writer is using this directory");
  }
}

void ShardWriter::Impl::resume() {
  std::set<std::string> kept_files;
  bool changed = false;
  if (fs::exists(dir / kIndexFileName)) {
    const ShardIndex old = ShardIndex::load(dir);
    for (const auto& s : old.shards()) {
      const fs::path p = dir / s.file;
      std::error_code ec;
      const bool ok = fs::is_regular_file(p, ec) && fs::file_size(p, ec) == s.size && !ec &&
                      fnv1a64_file(p) == s.fnv1a64;
      if (!ok) {
        spdlog::warn("{}: shard {} is missing or does not match index.json; its clips will be redone",
                     where, s.file);
        changed = true;
        continue;
      }
      kept_files.insert(s.file);
      index.add_shard(s);
      int n = 0;
      parse_shard_file_name(s.file, &n);
      next_number = std::max(next_number, n + 1);
    }
  }
  for (const auto& c : index.clips()) ids.insert(c.clip_id);
  // Leftovers of killed runs: temp files and shards that never made it into the index.
  std::vector<fs::path> stale;
  for (const auto& de : fs::directory_iterator(dir)) {
    const std::string name = de.path().filename().string();
    int n = 0;
    const bool orphan = parse_shard_file_name(name, &n) && !kept_files.count(name);
    if (orphan || is_temp_shard_name(name)) stale.push_back(de.path());
    changed = changed || orphan;
  }
  for (const auto& p : stale) {
    std::error_code ec;
    fs::remove(p, ec);
  }
  if (changed) index.save(dir);  // complete=false until finish()
}

void ShardWriter::Impl::open_shard() {
  final_path = dir / shard_file_name(next_number);
  temp_path = final_path;
  temp_path += fmt::format(".tmp-{}-{}", ::getpid(), g_temp_counter++);
  const std::string w = temp_path.string();
  file = h5::create_file(w);
  h5::write_attr(file.get(), Attr{"format", Attr::Kind::Str, kShardFormat, 0, 0}, w);
  h5::write_attr(file.get(), Attr{"version", Attr::Kind::I64, "", kShardVersion, 0}, w);
  clips_group = h5::create_group(file.get(), "clips", w);
  current = ShardFileInfo{};
  current.file = final_path.filename().string();
}

void ShardWriter::Impl::write_clip(const EncodedClip& e, const std::string& id) {
  const std::string w = fmt::format("{} (clip '{}')", final_path.string(), id);
  h5::Handle g = h5::create_group(clips_group.get(), id, w);
  for (const auto& a : e.attrs) h5::write_attr(g.get(), a, w);
  h5::write_attr_u64(g.get(), "checksum", e.checksum, w);
  if (e.storage == FrameStorage::Jpeg)
    h5::write_vlen_frames(g.get(), "frames", e.frames, w);
  else
    h5::write_raw_frames(g.get(), "frames", e.frames, e.height, e.width, cfg.compression, w);
  for (const auto& b : e.datasets) h5::write_blob(g.get(), b, cfg.compression, w);
}

void ShardWriter::Impl::close_shard() {
  const std::string w = temp_path.string();
  clips_group.reset();
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) {
    file.reset();
    fail_at(w, "cannot flush shard");
  }
  file.reset();
  fsync_path(temp_path, false);
  std::error_code ec;
  current.size = fs::file_size(temp_path, ec);
  if (ec) fail_at(w, "cannot stat shard: {}", ec.message());
  current.fnv1a64 = fnv1a64_file(temp_path);
  fs::rename(temp_path, final_path, ec);
  if (ec) fail_at(final_path.string(), "cannot rename temp shard into place: {}", ec.message());
  temp_path.clear();
  fsync_path(dir, true);
  index.add_shard(std::move(current));
  current = ShardFileInfo{};
  ++next_number;
  index.set_complete(false);
  index.save(dir);
}

void ShardWriter::Impl::drop_open_shard() {
  clips_group.reset();
  file.reset();
  if (!temp_path.empty()) {
    std::error_code ec;
    fs::remove(temp_path, ec);
  }
  for (const auto& c : current.clips) ids.erase(c.clip_id);
  current = ShardFileInfo{};
  temp_path.clear();
}

ShardWriter::ShardWriter(fs::path dir, ShardWriterConfig cfg) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.dir = std::move(dir);
  m.cfg = cfg;
  m.where = m.dir.string();
  if (cfg.clips_per_shard <= 0) fail_at(m.where, "clips_per_shard must be positive");
  if (cfg.jpeg_quality < 1 || cfg.jpeg_quality > 100)
    fail_at(m.where, "jpeg_quality {} is outside 1..100", cfg.jpeg_quality);
  if (cfg.compression < 0 || cfg.compression > 9)
    fail_at(m.where, "compression {} is outside 0..9", cfg.compression);
  std::error_code ec;
  fs::create_directories(m.dir, ec);
  if (ec) fail_at(m.where, "cannot create directory: {}", ec.message());
  m.take_lock();
  try {
    m.resume();
  } catch (...) {
    ::close(m.lock_fd);
    throw;
  }
}

ShardWriter::~ShardWriter() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    h5::Lock h5lock;
    impl_->drop_open_shard();
  }
  if (impl_->lock_fd >= 0) ::close(impl_->lock_fd);
}

EncodedShardClip ShardWriter::encode(const ClipRecord& clip, const ShardWriterConfig& cfg) {
  validate_clip(clip, clip.source.empty() ? clip.id : clip.source);
  EncodedShardClip out;
  out.id = clip.id;
  out.data = encode_clip(clip, cfg.frames, cfg.jpeg_quality);
  out.entry = index_entry(clip, cfg.frames, out.data.checksum);
  return out;
}

void ShardWriter::add(const ClipRecord& clip) {
  // The expensive part (JPEG, float16, hashing) runs outside the lock.
  add_encoded(encode(clip, impl_->cfg));
}

void ShardWriter::add_encoded(const EncodedShardClip& clip) {
  auto& m = *impl_;
  std::lock_guard<std::mutex> g(m.mu);
  if (m.finished) fail_at(m.where, "add() after finish()");
  if (m.failed) fail_at(m.where, "an earlier write failed; this writer accepts no more clips");
  if (m.ids.count(clip.id)) fail_at(m.where, "clip '{}' is already in the dataset", clip.id);
  h5::Lock h5lock;
  try {
    if (!m.file) m.open_shard();
    m.write_clip(clip.data, clip.id);
  } catch (...) {
    m.failed = true;
    throw;
  }
  m.ids.insert(clip.id);
  m.current.clips.push_back(clip.entry);
  if (static_cast<int>(m.current.clips.size()) >= m.cfg.clips_per_shard) {
    try {
      m.close_shard();
    } catch (...) {
      m.failed = true;
      throw;
    }
  }
}

void ShardWriter::finish() {
  auto& m = *impl_;
  std::lock_guard<std::mutex> g(m.mu);
  if (m.finished) return;
  if (m.failed) fail_at(m.where, "cannot finish: an earlier write failed");
  h5::Lock h5lock;
  if (m.file) {
    try {
      m.close_shard();
    } catch (...) {
      m.failed = true;
      throw;
    }
  }
  m.index.set_complete(true);
  m.index.save(m.dir);
  m.finished = true;
}

std::set<std::string> ShardWriter::existing_clip_ids() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  std::set<std::string> out;
  for (const auto& c : impl_->index.clips()) out.insert(c.clip_id);
  return out;
}

}  // namespace hallo::data
