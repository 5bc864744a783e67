#include "data/shard/clip_spool.h"

#include <type_traits>

#include "core/error.h"

namespace hallo::data {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kClipMagic = 0x4c4f4f5053504c43ull;  // "CLPSPOOL"

// One description of the record layout, walked by a writer and a reader alike,
// so the two directions cannot drift apart. Enums and bools travel as int32.
class Out {
 public:
  explicit Out(std::ofstream& o) : o_(o) {}
  template <class T>
  void pod(T& v) {
    if constexpr (std::is_enum_v<T> || std::is_same_v<T, bool> || std::is_same_v<T, int>) {
      auto w = static_cast<int32_t>(v);
      raw(&w, sizeof w);
    } else {
      raw(&v, sizeof v);
    }
  }
  void str(std::string& s) { sized(s.data(), s.size()); }
  template <class T>
  void vec(std::vector<T>& v) {
    sized(v.data(), v.size() * sizeof(T));
  }
  template <class T>
  void list(std::vector<T>& v, void (*each)(Out&, T&)) {
    uint64_t n = v.size();
    pod(n);
    for (auto& x : v) each(*this, x);
  }

 private:
  void raw(const void* p, uint64_t n) { o_.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); }
  void sized(const void* p, uint64_t n) {
    pod(n);
    raw(p, n);
  }
  std::ofstream& o_;
};

class In {
 public:
  In(std::ifstream& i, const fs::path& file) : i_(i), file_(file) {}
  template <class T>
  void pod(T& v) {
    if constexpr (std::is_enum_v<T> || std::is_same_v<T, bool> || std::is_same_v<T, int>) {
      int32_t w = 0;
      raw(&w, sizeof w);
      v = static_cast<T>(w);
    } else {
      raw(&v, sizeof v);
    }
  }
  void str(std::string& s) {
    s.resize(size(1));
    raw(s.data(), s.size());
  }
  template <class T>
  void vec(std::vector<T>& v) {
    v.resize(size(sizeof(T)));
    raw(v.data(), v.size() * sizeof(T));
  }
  template <class T>
  void list(std::vector<T>& v, void (*each)(In&, T&)) {
    uint64_t n = 0;
    pod(n);
    v.resize(n);
    for (auto& x : v) each(*this, x);
  }

 private:
  uint64_t size(size_t elem) {
    uint64_t n = 0;
    pod(n);
    if (n % elem) fail_at(file_.string(), "corrupt spool record");
    return n / elem;
  }
  void raw(void* p, uint64_t n) {
    i_.read(static_cast<char*>(p), static_cast<std::streamsize>(n));
    if (!i_) fail_at(file_.string(), "spool file ends early (changed while the run was reading it?)");
  }
  std::ifstream& i_;
  const fs::path& file_;
};

template <class IO>
void attr_fields(IO& io, Attr& a) {
  io.str(a.name);
  io.pod(a.kind);
  io.str(a.s);
  io.pod(a.i);
  io.pod(a.d);
}

template <class IO>
void blob_fields(IO& io, Blob& b) {
  io.str(b.name);
  io.pod(b.elem);
  io.vec(b.dims);
  io.vec(b.bytes);
  io.pod(b.chunk_rows);
  io.pod(b.compress);
}

template <class IO>
void frame_bytes(IO& io, std::vector<uint8_t>& f) {
  io.vec(f);
}

template <class IO>
void clip_fields(IO& io, EncodedShardClip& c) {
  io.str(c.id);
  auto& d = c.data;
  io.list(d.attrs, &attr_fields<IO>);
  io.pod(d.storage);
  io.pod(d.height);
  io.pod(d.width);
  io.list(d.frames, &frame_bytes<IO>);
  io.list(d.datasets, &blob_fields<IO>);
  io.pod(d.checksum);
  auto& e = c.entry;
  io.str(e.shard);
  io.str(e.clip_id);
  io.pod(e.num_frames);
  io.pod(e.height);
  io.pod(e.width);
  io.str(e.frame_storage);
  io.str(e.audio_extractor);
  io.pod(e.audio_layers);
  io.pod(e.audio_dim);
  io.pod(e.face_emb_dim);
  io.pod(e.has_masks);
  io.pod(e.checksum);
}

}  // namespace

ClipSpool::ClipSpool(fs::path file) : file_(std::move(file)) {}

ClipSpool::~ClipSpool() {
  if (out_.is_open()) out_.close();
  std::error_code ec;
  fs::remove(file_, ec);
}

void ClipSpool::push(const EncodedShardClip& clip) {
  if (!out_.is_open()) {
    out_.open(file_, std::ios::binary | std::ios::trunc);
    if (!out_) fail_at(file_.string(), "cannot create the clip spool file");
  }
  const auto before = out_.tellp();
  Out w(out_);
  uint64_t magic = kClipMagic;
  w.pod(magic);
  clip_fields(w, const_cast<EncodedShardClip&>(clip));  // Out only reads the fields
  out_.flush();
  if (!out_) fail_at(file_.string(), "cannot write the clip spool file (disk full?)");
  bytes_ += static_cast<uint64_t>(out_.tellp() - before);
  ++count_;
}

void ClipSpool::drain(const std::function<void(const EncodedShardClip&)>& f) {
  if (count_ == 0) return;
  out_.close();
  std::ifstream in(file_, std::ios::binary);
  if (!in) fail_at(file_.string(), "cannot reopen the clip spool file");
  In r(in, file_);
  for (size_t k = 0; k < count_; ++k) {
    uint64_t magic = 0;
    r.pod(magic);
    if (magic != kClipMagic) fail_at(file_.string(), "corrupt spool record {}", k);
    EncodedShardClip c;
    clip_fields(r, c);
    f(c);
  }
  in.close();
  std::error_code ec;
  fs::remove(file_, ec);
  count_ = 0;
  bytes_ = 0;
}

int ClipSpool::remove_stale(const fs::path& dir) {
  int n = 0;
  const std::string suf = kSuffix;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    std::error_code entry_ec;  // one unreadable entry must not end the sweep
    if (name.size() > suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0 &&
        it->is_regular_file(entry_ec) && fs::remove(it->path(), entry_ec))
      ++n;
  }
  return n;
}

}  // namespace hallo::data
