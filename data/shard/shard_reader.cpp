#include "data/shard/shard_reader.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <list>
#include <map>

#include "core/error.h"
#include "data/shard/checksum.h"
#include "data/shard/clip_codec.h"
#include "data/shard/h5_file.h"

namespace hallo::data {

namespace fs = std::filesystem;

namespace {

// Enough for sampling across many shards without running into fd limits.
constexpr size_t kMaxOpenFiles = 32;

// What the reader needs to locate and check one clip's frames.
struct FrameSource {
  FrameStorage storage = FrameStorage::Jpeg;
  int num_frames = 0, height = 0, width = 0;
  std::vector<uint64_t> frame_sums;
};

}  // namespace

struct ShardReader::Impl {
  fs::path dir;
  ShardIndex index;
  // LRU of open shard files; guarded by h5::Lock like every HDF5 call.
  std::list<std::pair<std::string, h5::Handle>> open_files;

  const ShardIndexEntry& entry(size_t i) const {
    if (i >= index.clips().size())
      fail_at(dir.string(), "clip index {} out of range (dataset has {} clips)", i,
              index.clips().size());
    return index.clips()[i];
  }

  hid_t file(const std::string& name) {
    for (auto it = open_files.begin(); it != open_files.end(); ++it) {
      if (it->first == name) {
        open_files.splice(open_files.begin(), open_files, it);
        return open_files.front().second.get();
      }
    }
    const fs::path p = dir / name;
    if (!fs::exists(p)) fail_at(p.string(), "shard listed in index.json does not exist");
    h5::Handle h = h5::open_file(p.string(), false);
    open_files.emplace_front(name, std::move(h));
    if (open_files.size() > kMaxOpenFiles) open_files.pop_back();
    return open_files.front().second.get();
  }

  h5::Handle clip_group(const ShardIndexEntry& e, const std::string& where) {
    const hid_t f = file(e.shard);
    if (!h5::exists(f, "clips") || H5Lexists(h5::open_group(f, "clips", where).get(),
                                             e.clip_id.c_str(), H5P_DEFAULT) <= 0)
      fail_at(where, "clip '{}' listed in index.json is not in the shard", e.clip_id);
    return h5::open_group(f, "clips/" + e.clip_id, where);
  }

  FrameSource frame_source(hid_t g, const ShardIndexEntry& e, const std::string& where) {
    FrameSource s;
    s.storage = parse_frame_storage(h5::read_attr(g, "frame_storage", where).s, where);
    s.num_frames = static_cast<int>(h5::read_attr(g, "num_frames", where).i);
    s.height = static_cast<int>(h5::read_attr(g, "height", where).i);
    s.width = static_cast<int>(h5::read_attr(g, "width", where).i);
    const Blob sums = h5::read_blob(g, "frame_checksums", Elem::U64, where);
    if (sums.dims.size() != 1 || sums.dims[0] != static_cast<uint64_t>(s.num_frames))
      fail_at(where, "clip '{}': frame_checksums does not match num_frames {}", e.clip_id,
              s.num_frames);
    s.frame_sums.resize(sums.dims[0]);
    std::memcpy(s.frame_sums.data(), sums.bytes.data(), sums.bytes.size());
    return s;
  }

  std::vector<uint8_t> frame_bytes(hid_t g, const FrameSource& s, const ShardIndexEntry& e,
                                   int f, const std::string& where) {
    if (f < 0 || f >= s.num_frames)
      fail_at(where, "clip '{}': frame {} out of range (clip has {})", e.clip_id, f, s.num_frames);
    std::vector<uint8_t> bytes =
        s.storage == FrameStorage::Jpeg
            ? h5::read_vlen_frame(g, "frames", static_cast<uint64_t>(f), where)
            : h5::read_raw_frame(g, "frames", static_cast<uint64_t>(f), s.height, s.width, where);
    const uint64_t got = fnv1a64(bytes.data(), bytes.size());
    if (got != s.frame_sums[static_cast<size_t>(f)])
      fail_at(where, "clip '{}' frame {}: checksum mismatch (stored {}, computed {}); the shard is corrupt",
              e.clip_id, f, hex64(s.frame_sums[static_cast<size_t>(f)]), hex64(got));
    return bytes;
  }

  // Reads frames' bytes under the HDF5 lock; decoding happens outside it.
  std::vector<std::vector<uint8_t>> read_frame_bytes(const ShardIndexEntry& e,
                                                     const std::vector<int>& frames,
                                                     FrameSource* src, const std::string& where) {
    h5::Lock lock;
    h5::Handle g = clip_group(e, where);
    *src = frame_source(g.get(), e, where);
    std::vector<std::vector<uint8_t>> out;
    out.reserve(frames.size());
    for (int f : frames) out.push_back(frame_bytes(g.get(), *src, e, f, where));
    return out;
  }
};

ShardReader::ShardReader(fs::path dir) : impl_(std::make_unique<Impl>()) {
  impl_->dir = std::move(dir);
  impl_->index = ShardIndex::load(impl_->dir);
  if (!impl_->index.complete())
    spdlog::warn("{}: index.json is not marked complete (writer unfinished or killed); reading the {} "
                 "clips of its completed shards",
                 impl_->dir.string(), impl_->index.clips().size());
}

ShardReader::~ShardReader() {
  if (!impl_) return;
  h5::Lock lock;
  impl_->open_files.clear();
}

const ShardIndex& ShardReader::index() const { return impl_->index; }
const fs::path& ShardReader::dir() const { return impl_->dir; }

ClipRecord ShardReader::read_clip(size_t i, bool frames) const {
  const ShardIndexEntry& e = impl_->entry(i);
  const std::string where = (impl_->dir / e.shard).string();
  std::vector<Attr> attrs;
  std::vector<Blob> datasets;
  uint64_t stored = 0;
  FrameSource src;
  std::vector<std::vector<uint8_t>> frame_bytes;
  {
    h5::Lock lock;
    h5::Handle g = impl_->clip_group(e, where);
    for (const auto& name : canonical_attr_names()) attrs.push_back(h5::read_attr(g.get(), name, where));
    stored = h5::read_attr_u64(g.get(), "checksum", where);
    for (const auto& [name, elem] : canonical_datasets())
      if (h5::exists(g.get(), name)) datasets.push_back(h5::read_blob(g.get(), name, elem, where));
    if (frames) {
      src = impl_->frame_source(g.get(), e, where);
      for (int f = 0; f < src.num_frames; ++f)
        frame_bytes.push_back(impl_->frame_bytes(g.get(), src, e, f, where));
    }
  }
  const uint64_t got = clip_checksum(attrs, datasets);
  if (got != stored)
    fail_at(where, "clip '{}': checksum mismatch (stored {}, computed {}); the shard is corrupt",
            e.clip_id, hex64(stored), hex64(got));
  ClipRecord c = decode_clip_fields(attrs, datasets, where);
  if (c.id != e.clip_id)
    fail_at(where, "clip group '{}' holds clip id '{}'", e.clip_id, c.id);
  for (size_t f = 0; f < frame_bytes.size(); ++f)
    c.frames.push_back(decode_frame(frame_bytes[f], src.storage, src.height, src.width,
                                    fmt::format("{} (clip '{}' frame {})", where, e.clip_id, f)));
  return c;
}

cv::Mat ShardReader::read_frame(size_t clip, int frame) const {
  return read_frames(clip, {frame}).front();
}

std::vector<cv::Mat> ShardReader::read_frames(size_t clip, const std::vector<int>& frames) const {
  const ShardIndexEntry& e = impl_->entry(clip);
  const std::string where = (impl_->dir / e.shard).string();
  FrameSource src;
  const auto bytes = impl_->read_frame_bytes(e, frames, &src, where);
  std::vector<cv::Mat> out;
  out.reserve(frames.size());
  for (size_t k = 0; k < frames.size(); ++k)
    out.push_back(decode_frame(bytes[k], src.storage, src.height, src.width,
                               fmt::format("{} (clip '{}' frame {})", where, e.clip_id, frames[k])));
  return out;
}

}  // namespace hallo::data
