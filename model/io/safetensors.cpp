#include "model/io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/atomic_file.h"
#include "core/error.h"

namespace hallo::io {

using nlohmann::json;

namespace {

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

const char* json_type(const json& j) { return j.type_name(); }

SafetensorsEntry parse_entry(const std::string& where, const std::string& name, const json& v,
                             uint64_t data_size) {
  const std::string ctx = fmt::format("{}: tensor '{}'", where, name);
  if (!v.is_object()) fail("{}: header entry is {}, expected an object", ctx, json_type(v));
  for (auto it = v.begin(); it != v.end(); ++it)
    if (it.key() != "dtype" && it.key() != "shape" && it.key() != "data_offsets")
      fail("{}: unexpected field '{}'", ctx, it.key());
  SafetensorsEntry e;
  e.name = name;

  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) fail("{}: missing or non-string 'dtype'", ctx);
  auto parsed = dtype_from_name(dt->get<std::string>());
  if (!parsed) fail("{}: unsupported dtype '{}'", ctx, dt->get<std::string>());
  e.dtype = *parsed;

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) fail("{}: missing or non-array 'shape'", ctx);
  if (sh->size() > 64) fail("{}: shape has {} dims (limit 64)", ctx, sh->size());
  uint64_t numel = 1;
  constexpr uint64_t kLimit = std::numeric_limits<int64_t>::max() / 8;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) fail("{}: shape entries must be non-negative integers", ctx);
    uint64_t x = d.get<uint64_t>();
    if (x > kLimit || (x != 0 && numel > kLimit / x)) fail("{}: shape is too large", ctx);
    numel *= x;
    e.shape.push_back(static_cast<int64_t>(x));
  }

  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail("{}: 'data_offsets' must be [begin, end] with non-negative integers", ctx);
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  if (e.begin > e.end) fail("{}: data_offsets begin {} > end {}", ctx, e.begin, e.end);
  if (e.end > data_size)
    fail("{}: data_offsets [{}, {}) out of range: data region has {} bytes (file truncated?)", ctx,
         e.begin, e.end, data_size);
  const uint64_t want = numel * dtype_size(e.dtype);
  if (e.end - e.begin != want)
    fail("{}: data_offsets span {} bytes but {} {} needs {}", ctx, e.end - e.begin,
         dtype_name(e.dtype), json(e.shape).dump(), want);
  return e;
}

}  // namespace

SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& where) {
  if (size < 8) fail_at(where, "not a safetensors file: {} bytes is too short for a header", size);
  const uint64_t hlen = read_u64_le(data);
  if (hlen > kMaxSafetensorsHeader)
    fail_at(where, "safetensors header length {} exceeds the {} byte limit (corrupt file?)", hlen,
            kMaxSafetensorsHeader);
  if (hlen > size - 8)
    fail_at(where, "safetensors header length {} exceeds the file size {} (truncated?)", hlen, size);
  if (hlen < 2 || data[8] != '{')
    fail_at(where, "not a safetensors file: header does not start with '{{'");

  json h;
  try {
    h = json::parse(data + 8, data + 8 + hlen);
  } catch (const json::parse_error& e) {
    fail_at(where, "invalid safetensors header JSON: {}", e.what());
  }
  if (!h.is_object()) fail_at(where, "safetensors header is not a JSON object");

  SafetensorsHeader out;
  out.data_start = 8 + hlen;
  const uint64_t data_size = size - out.data_start;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) fail_at(where, "__metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) fail_at(where, "__metadata__ value '{}' is not a string", m.key());
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    out.entries.push_back(parse_entry(where, it.key(), *it, data_size));
  }

  // Overlap check: sort by begin; zero-sized tensors occupy nothing.
  std::vector<const SafetensorsEntry*> order;
  for (const auto& e : out.entries)
    if (e.end > e.begin) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->begin < order[i - 1]->end)
      fail_at(where, "tensors '{}' and '{}' overlap in the data region", order[i - 1]->name,
              order[i]->name);
  std::sort(out.entries.begin(), out.entries.end(),
            [](const auto& a, const auto& b) { return a.begin < b.begin || (a.begin == b.begin && a.name < b.name); });
  return out;
}

WeightSet read_safetensors(const std::filesystem::path& path) {
  auto blob = map_file(path);
  const auto hdr = parse_safetensors(blob->data(), blob->size(), path.string());
  WeightSet ws;
  ws.format = "safetensors";
  ws.source = path.string();
  ws.metadata = hdr.metadata;
  ws.tensors.reserve(hdr.entries.size());
  for (const auto& e : hdr.entries) {
    TensorRecord r;
    r.name = e.name;
    r.dtype = e.dtype;
    r.shape = e.shape;
    r.storage = blob;
    r.offset = hdr.data_start + e.begin;
    ws.tensors.push_back(std::move(r));
  }
  ws.sort_by_name();
  return ws;
}

void copy_contiguous(const TensorRecord& r, uint8_t* out) {
  const size_t es = dtype_size(r.dtype);
  const int64_t n = r.numel();
  if (n == 0) return;
  if (r.is_contiguous()) {
    std::memcpy(out, r.data(), static_cast<size_t>(n) * es);
    return;
  }
  // Odometer over the shape, innermost dimension fastest.
  const size_t nd = r.shape.size();
  std::vector<int64_t> idx(nd, 0);
  const uint8_t* base = r.data();
  for (int64_t k = 0; k < n; ++k) {
    int64_t off = 0;
    for (size_t d = 0; d < nd; ++d) off += idx[d] * r.strides[d];
    std::memcpy(out + static_cast<size_t>(k) * es, base + static_cast<size_t>(off) * es, es);
    for (int d = static_cast<int>(nd) - 1; d >= 0; --d) {
      if (++idx[d] < r.shape[d]) break;
      idx[d] = 0;
    }
  }
}

std::string safetensors_header_json(const std::vector<TensorRecord>& tensors,
                                    const std::map<std::string, std::string>& metadata) {
  // nlohmann's default object is key-sorted, matching the layout order below.
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t off = 0;
  for (const auto& t : tensors) {
    const uint64_t n = t.nbytes();
    h[t.name] = {{"dtype", std::string(dtype_name(t.dtype))}, {"shape", t.shape}, {"data_offsets", {off, off + n}}};
    off += n;
  }
  std::string s = h.dump();
  // Pad with spaces so the data region starts 8-byte aligned (zero-copy mmap reads).
  while ((8 + s.size()) % 8 != 0) s.push_back(' ');
  return s;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorRecord*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  std::vector<TensorRecord> ordered;
  ordered.reserve(sorted.size());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i && sorted[i]->name == sorted[i - 1]->name)
      fail_at(path.string(), "duplicate tensor name '{}'", sorted[i]->name);
    ordered.push_back(*sorted[i]);
  }
  const std::string header = safetensors_header_json(ordered, metadata);
  AtomicFile f(path);
  uint8_t len[8];
  uint64_t hl = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(hl >> (8 * i));
  f.write(len, 8);
  f.write(header);
  std::vector<uint8_t> buf;
  for (const auto& t : ordered) {
    if (t.is_contiguous()) {
      f.write(t.data(), t.nbytes());
    } else {
      buf.resize(t.nbytes());
      copy_contiguous(t, buf.data());
      f.write(buf.data(), buf.size());
    }
  }
  f.commit();
}

}  // namespace hallo::io
