#pragma once
// 64-bit FNV-1a: simple enough to re-implement in a few lines of Python (see
// data/README.md), strong enough to catch flipped bytes in a shard.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace hallo::data {

class Fnv1a64 {
 public:
  static constexpr uint64_t kOffset = 0xcbf29ce484222325ull;
  static constexpr uint64_t kPrime = 0x100000001b3ull;

  void update(const void* data, size_t n);
  void update_u64(uint64_t v);  // 8 bytes, little-endian
  // One named field: name bytes, a 0 byte, the value's byte count (u64 LE), the bytes.
  void field(const std::string& name, const void* data, size_t n);
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = kOffset;
};

uint64_t fnv1a64(const void* data, size_t n);
// Whole-file hash (streamed); throws hallo::Error naming the file if it cannot be read.
uint64_t fnv1a64_file(const std::filesystem::path& path);

std::string hex64(uint64_t v);  // 16 lower-case hex digits
// Parses hex64 output; throws hallo::Error naming `where` on bad text.
uint64_t parse_hex64(const std::string& s, const std::string& where);

}  // namespace hallo::data
