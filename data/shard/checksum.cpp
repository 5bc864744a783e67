#include "data/shard/checksum.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "core/error.h"

namespace hallo::data {

void Fnv1a64::update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = h_;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= kPrime;
  }
  h_ = h;
}

void Fnv1a64::update_u64(uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(v >> (8 * i));
  update(b, 8);
}

void Fnv1a64::field(const std::string& name, const void* data, size_t n) {
  update(name.data(), name.size());
  const unsigned char zero = 0;
  update(&zero, 1);
  update_u64(n);
  update(data, n);
}

uint64_t fnv1a64(const void* data, size_t n) {
  Fnv1a64 h;
  h.update(data, n);
  return h.value();
}

uint64_t fnv1a64_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_at(path.string(), "cannot open for checksum: {}", std::strerror(errno));
  Fnv1a64 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) fail_at(path.string(), "read error while computing checksum");
  return h.value();
}

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

uint64_t parse_hex64(const std::string& s, const std::string& where) {
  if (s.size() != 16) fail_at(where, "checksum '{}' is not 16 hex digits", s);
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else fail_at(where, "checksum '{}' is not 16 hex digits", s);
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

}  // namespace hallo::data
