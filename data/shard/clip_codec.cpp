#include "data/shard/clip_codec.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "data/shard/checksum.h"
#include "data/shard/float16.h"

namespace hallo::data {

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float sizes expected");

size_t elem_size(Elem e) {
  switch (e) {
    case Elem::U8: return 1;
    case Elem::F16: return 2;
    case Elem::F32: return 4;
    case Elem::U64:
    case Elem::I64:
    case Elem::F64: return 8;
  }
  return 1;
}

const std::vector<std::string>& canonical_attr_names() {
  static const std::vector<std::string> names = {
      "id",     "source",          "t_start",     "t_end",     "fps",
      "num_frames", "height",      "width",       "frame_storage", "audio_extractor",
      "audio_layers", "audio_dim", "latent_channels", "face_emb_valid", "meta"};
  return names;
}

const std::vector<std::pair<std::string, Elem>>& canonical_datasets() {
  static const std::vector<std::pair<std::string, Elem>> list = [] {
    std::vector<std::pair<std::string, Elem>> v = {
        {"frame_checksums", Elem::U64}, {"audio", Elem::F16}, {"face_region", Elem::U8}};
    for (const char* kind : {"lip", "face", "pose"})
      for (int l = 0; l < kMaskLevels; ++l) v.emplace_back(fmt::format("{}_mask_{}", kind, l), Elem::U8);
    v.insert(v.end(), {{"face_emb", Elem::F32},
                       {"latent_mean", Elem::F16},
                       {"latent_std", Elem::F16},
                       {"face_boxes", Elem::F32},
                       {"landmarks", Elem::F32}});
    return v;
  }();
  return list;
}

namespace {

// The host is little-endian on every platform we build for; blobs are memcpy'd.
bool host_is_little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

template <typename T>
Blob make_blob(std::string name, Elem elem, std::vector<uint64_t> dims, const std::vector<T>& v) {
  Blob b;
  b.name = std::move(name);
  b.elem = elem;
  b.dims = std::move(dims);
  b.bytes.resize(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.bytes.data(), v.data(), b.bytes.size());
  return b;
}

Blob mat_blob(std::string name, const cv::Mat& m) {
  Blob b;
  b.name = std::move(name);
  b.elem = Elem::U8;
  b.dims = {static_cast<uint64_t>(m.rows), static_cast<uint64_t>(m.cols)};
  cv::Mat c = m.isContinuous() ? m : m.clone();
  b.bytes.assign(c.data, c.data + c.total());
  b.chunk_rows = b.dims[0];  // one chunk: masks are read whole
  b.compress = true;
  return b;
}

Attr str_attr(const char* n, std::string v) {
  Attr a;
  a.name = n;
  a.kind = Attr::Kind::Str;
  a.s = std::move(v);
  return a;
}
Attr i64_attr(const char* n, int64_t v) {
  Attr a;
  a.name = n;
  a.kind = Attr::Kind::I64;
  a.i = v;
  return a;
}
Attr f64_attr(const char* n, double v) {
  Attr a;
  a.name = n;
  a.kind = Attr::Kind::F64;
  a.d = v;
  return a;
}

std::vector<uint8_t> encode_frame(const cv::Mat& rgb, FrameStorage storage, int quality,
                                  const std::string& id, size_t f) {
  if (storage == FrameStorage::Raw) {
    cv::Mat c = rgb.isContinuous() ? rgb : rgb.clone();
    return std::vector<uint8_t>(c.data, c.data + c.total() * 3);
  }
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<uint8_t> out;
  if (!cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, quality}))
    fail_at(id, "JPEG encoding of frame {} failed", f);
  return out;
}

}  // namespace

const Attr* find_attr(const std::vector<Attr>& attrs, const std::string& name) {
  for (const auto& a : attrs)
    if (a.name == name) return &a;
  return nullptr;
}

uint64_t clip_checksum(const std::vector<Attr>& attrs, const std::vector<Blob>& datasets) {
  Fnv1a64 h;
  for (const auto& a : attrs) {
    switch (a.kind) {
      case Attr::Kind::Str: h.field(a.name, a.s.data(), a.s.size()); break;
      case Attr::Kind::I64: h.field(a.name, &a.i, 8); break;
      case Attr::Kind::F64: h.field(a.name, &a.d, 8); break;
    }
  }
  for (const auto& b : datasets) {
    h.update(b.name.data(), b.name.size());
    const unsigned char zero = 0;
    h.update(&zero, 1);
    h.update_u64(b.dims.size());
    for (uint64_t d : b.dims) h.update_u64(d);
    h.update_u64(b.bytes.size());
    h.update(b.bytes.data(), b.bytes.size());
  }
  return h.value();
}

EncodedClip encode_clip(const ClipRecord& c, FrameStorage storage, int jpeg_quality) {
  if (!host_is_little_endian()) fail_at(c.id, "shards are only written on little-endian hosts");
  EncodedClip e;
  e.storage = storage;
  e.height = c.height;
  e.width = c.width;
  const auto F = static_cast<uint64_t>(c.num_frames);

  e.attrs = {str_attr("id", c.id),
             str_attr("source", c.source),
             f64_attr("t_start", c.t_start),
             f64_attr("t_end", c.t_end),
             f64_attr("fps", c.fps),
             i64_attr("num_frames", c.num_frames),
             i64_attr("height", c.height),
             i64_attr("width", c.width),
             str_attr("frame_storage", frame_storage_name(storage)),
             str_attr("audio_extractor", c.audio_extractor),
             i64_attr("audio_layers", c.audio_layers),
             i64_attr("audio_dim", c.audio_dim),
             i64_attr("latent_channels", c.latent_channels),
             i64_attr("face_emb_valid", c.face_emb_valid ? 1 : 0),
             str_attr("meta", c.meta.dump())};

  std::vector<uint64_t> frame_sums(F);
  e.frames.resize(F);
  for (size_t f = 0; f < F; ++f) {
    e.frames[f] = encode_frame(c.frames[f], storage, jpeg_quality, c.id, f);
    frame_sums[f] = fnv1a64(e.frames[f].data(), e.frames[f].size());
  }
  e.datasets.push_back(make_blob("frame_checksums", Elem::U64, {F}, frame_sums));

  if (!c.audio.empty()) {
    Blob b = make_blob("audio", Elem::F16,
                       {F, static_cast<uint64_t>(c.audio_layers), static_cast<uint64_t>(c.audio_dim)},
                       floats_to_halves(c.audio));
    // ~256 KiB chunks: a stage-2 window touches one or two of them.
    const uint64_t row = static_cast<uint64_t>(c.audio_layers) * c.audio_dim * 2;
    b.chunk_rows = std::clamp<uint64_t>((256u << 10) / row, 1, F);
    b.compress = true;
    e.datasets.push_back(std::move(b));
  }
  if (!c.face_region.empty()) e.datasets.push_back(mat_blob("face_region", c.face_region));
  const std::pair<const char*, const std::vector<cv::Mat>*> masks[] = {
      {"lip", &c.lip_masks}, {"face", &c.face_masks}, {"pose", &c.pose_masks}};
  for (const auto& [kind, levels] : masks)
    for (size_t l = 0; l < levels->size(); ++l)
      e.datasets.push_back(mat_blob(fmt::format("{}_mask_{}", kind, l), (*levels)[l]));
  if (!c.face_emb.empty())
    e.datasets.push_back(make_blob("face_emb", Elem::F32, {c.face_emb.size()}, c.face_emb));
  if (c.latent_channels > 0) {
    const std::vector<uint64_t> dims = {F, static_cast<uint64_t>(c.latent_channels),
                                        static_cast<uint64_t>(c.height / 8),
                                        static_cast<uint64_t>(c.width / 8)};
    for (const auto* v : {&c.latent_mean, &c.latent_std}) {
      Blob b = make_blob(v == &c.latent_mean ? "latent_mean" : "latent_std", Elem::F16, dims,
                         floats_to_halves(*v));
      b.chunk_rows = 1;
      b.compress = true;
      e.datasets.push_back(std::move(b));
    }
  }
  if (!c.face_boxes.empty())
    e.datasets.push_back(make_blob("face_boxes", Elem::F32, {F, 4}, c.face_boxes));
  if (!c.landmarks.empty())
    e.datasets.push_back(make_blob("landmarks", Elem::F32, {F, 68, 2}, c.landmarks));

  e.checksum = clip_checksum(e.attrs, e.datasets);
  return e;
}

namespace {

std::string get_str(const std::vector<Attr>& attrs, const char* name, const std::string& where) {
  const Attr* a = find_attr(attrs, name);
  if (!a || a->kind != Attr::Kind::Str) fail_at(where, "missing string attribute '{}'", name);
  return a->s;
}
int64_t get_i64(const std::vector<Attr>& attrs, const char* name, const std::string& where) {
  const Attr* a = find_attr(attrs, name);
  if (!a || a->kind != Attr::Kind::I64) fail_at(where, "missing integer attribute '{}'", name);
  return a->i;
}
double get_f64(const std::vector<Attr>& attrs, const char* name, const std::string& where) {
  const Attr* a = find_attr(attrs, name);
  if (!a || a->kind != Attr::Kind::F64) fail_at(where, "missing float attribute '{}'", name);
  return a->d;
}

const Blob* find_blob(const std::vector<Blob>& v, const std::string& name) {
  for (const auto& b : v)
    if (b.name == name) return &b;
  return nullptr;
}

uint64_t count(const Blob& b) {
  uint64_t n = 1;
  for (auto d : b.dims) n *= d;
  return n;
}

void expect_dims(const Blob& b, const std::vector<uint64_t>& dims, const std::string& where) {
  if (b.dims != dims)
    fail_at(where, "dataset '{}' has shape [{}], expected [{}]", b.name, fmt::join(b.dims, ","),
            fmt::join(dims, ","));
}

template <typename T>
std::vector<T> blob_values(const Blob& b) {
  std::vector<T> v(b.bytes.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.bytes.data(), v.size() * sizeof(T));
  return v;
}

cv::Mat blob_mat(const Blob& b, const std::string& where) {
  if (b.dims.size() != 2 || count(b) != b.bytes.size())
    fail_at(where, "dataset '{}' is not a 2-D uint8 image", b.name);
  cv::Mat m(static_cast<int>(b.dims[0]), static_cast<int>(b.dims[1]), CV_8UC1);
  std::memcpy(m.data, b.bytes.data(), b.bytes.size());
  return m;
}

}  // namespace

ClipRecord decode_clip_fields(const std::vector<Attr>& attrs, const std::vector<Blob>& datasets,
                              const std::string& where_shard) {
  ClipRecord c;
  c.id = get_str(attrs, "id", where_shard);
  const std::string where = fmt::format("{} (clip '{}')", where_shard, c.id);
  c.source = get_str(attrs, "source", where);
  c.t_start = get_f64(attrs, "t_start", where);
  c.t_end = get_f64(attrs, "t_end", where);
  c.fps = get_f64(attrs, "fps", where);
  c.num_frames = static_cast<int>(get_i64(attrs, "num_frames", where));
  c.height = static_cast<int>(get_i64(attrs, "height", where));
  c.width = static_cast<int>(get_i64(attrs, "width", where));
  c.audio_extractor = get_str(attrs, "audio_extractor", where);
  c.audio_layers = static_cast<int>(get_i64(attrs, "audio_layers", where));
  c.audio_dim = static_cast<int>(get_i64(attrs, "audio_dim", where));
  c.latent_channels = static_cast<int>(get_i64(attrs, "latent_channels", where));
  c.face_emb_valid = get_i64(attrs, "face_emb_valid", where) != 0;
  const std::string meta = get_str(attrs, "meta", where);
  c.meta = nlohmann::json::parse(meta, nullptr, /*allow_exceptions=*/false);
  if (c.meta.is_discarded()) fail_at(where, "attribute 'meta' is not valid JSON");
  if (c.num_frames <= 0 || c.height <= 0 || c.width <= 0)
    fail_at(where, "invalid clip shape (num_frames {}, {}x{})", c.num_frames, c.width, c.height);

  const auto F = static_cast<uint64_t>(c.num_frames);
  if (const Blob* b = find_blob(datasets, "audio")) {
    expect_dims(*b, {F, static_cast<uint64_t>(c.audio_layers), static_cast<uint64_t>(c.audio_dim)},
                where);
    c.audio = halves_to_floats(blob_values<uint16_t>(*b));
  }
  if (const Blob* b = find_blob(datasets, "face_region")) {
    expect_dims(*b, {static_cast<uint64_t>(c.height), static_cast<uint64_t>(c.width)}, where);
    c.face_region = blob_mat(*b, where);
  }
  const std::pair<const char*, std::vector<cv::Mat>*> masks[] = {
      {"lip", &c.lip_masks}, {"face", &c.face_masks}, {"pose", &c.pose_masks}};
  for (const auto& [kind, levels] : masks) {
    for (int l = 0; l < kMaskLevels; ++l) {
      const Blob* b = find_blob(datasets, fmt::format("{}_mask_{}", kind, l));
      if (!b) {
        if (l != 0) fail_at(where, "{} masks stop at level {}", kind, l);
        break;
      }
      levels->push_back(blob_mat(*b, where));
    }
  }
  if (const Blob* b = find_blob(datasets, "face_emb")) {
    if (b->dims.size() != 1) fail_at(where, "dataset 'face_emb' must be 1-D");
    c.face_emb = blob_values<float>(*b);
  }
  if (c.latent_channels > 0) {
    const std::vector<uint64_t> dims = {F, static_cast<uint64_t>(c.latent_channels),
                                        static_cast<uint64_t>(c.height / 8),
                                        static_cast<uint64_t>(c.width / 8)};
    const Blob* m = find_blob(datasets, "latent_mean");
    const Blob* s = find_blob(datasets, "latent_std");
    if (!m || !s) fail_at(where, "latent_channels is {} but latents are missing", c.latent_channels);
    expect_dims(*m, dims, where);
    expect_dims(*s, dims, where);
    c.latent_mean = halves_to_floats(blob_values<uint16_t>(*m));
    c.latent_std = halves_to_floats(blob_values<uint16_t>(*s));
  }
  if (const Blob* b = find_blob(datasets, "face_boxes")) {
    expect_dims(*b, {F, 4}, where);
    c.face_boxes = blob_values<float>(*b);
  }
  if (const Blob* b = find_blob(datasets, "landmarks")) {
    expect_dims(*b, {F, 68, 2}, where);
    c.landmarks = blob_values<float>(*b);
  }
  return c;
}

cv::Mat decode_frame(const std::vector<uint8_t>& bytes, FrameStorage storage, int height,
                     int width, const std::string& where) {
  if (storage == FrameStorage::Raw) {
    if (bytes.size() != static_cast<size_t>(height) * width * 3)
      fail_at(where, "raw frame has {} bytes, expected {}", bytes.size(),
              static_cast<size_t>(height) * width * 3);
    cv::Mat m(height, width, CV_8UC3);
    std::memcpy(m.data, bytes.data(), bytes.size());
    return m;
  }
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                               const_cast<uint8_t*>(bytes.data())),
                       cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    fail_at(where, "JPEG decoding failed: {}", e.what());
  }
  if (bgr.empty()) fail_at(where, "JPEG decoding failed ({} bytes)", bytes.size());
  if (bgr.rows != height || bgr.cols != width)
    fail_at(where, "JPEG frame is {}x{}, expected {}x{}", bgr.cols, bgr.rows, width, height);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

}  // namespace hallo::data
