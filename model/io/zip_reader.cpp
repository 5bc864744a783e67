#include "model/io/zip_reader.h"

#include <algorithm>

#include "core/error.h"

namespace hallo::io {

namespace {

uint64_t le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kEocd64Sig = 0x06064b50;
constexpr uint32_t kEocd64LocSig = 0x07064b50;
constexpr uint32_t kCdirSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;

}  // namespace

bool looks_like_zip(const uint8_t* data, size_t size) {
  return size >= 4 && le(data, 4) == kLocalSig;
}

std::vector<ZipEntry> read_zip_directory(const uint8_t* d, size_t n, const std::string& where) {
  auto bad = [&](const std::string& what) -> void { fail_at(where, "corrupt zip archive: {}", what); };
  if (n < 22) bad("file too short");
  // End of central directory: last 22 bytes + up to 64 KiB comment.
  size_t eocd = std::string::npos;
  const size_t lo = n >= 22 + 65535 ? n - 22 - 65535 : 0;
  for (size_t p = n - 22 + 1; p-- > lo;)
    if (le(d + p, 4) == kEocdSig) { eocd = p; break; }
  if (eocd == std::string::npos) bad("end of central directory not found (truncated file?)");

  uint64_t count = le(d + eocd + 10, 2);
  uint64_t cd_size = le(d + eocd + 12, 4);
  uint64_t cd_off = le(d + eocd + 16, 4);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    if (eocd < 20 || le(d + eocd - 20, 4) != kEocd64LocSig) bad("ZIP64 locator missing");
    uint64_t e64 = le(d + eocd - 20 + 8, 8);
    if (n < 56 || e64 > n - 56 || le(d + e64, 4) != kEocd64Sig) bad("ZIP64 end record out of range");
    count = le(d + e64 + 32, 8);
    cd_size = le(d + e64 + 40, 8);
    cd_off = le(d + e64 + 48, 8);
  }
  if (cd_off > n || cd_size > n - cd_off) bad("central directory out of range");
  if (count > cd_size / 46) bad("entry count does not fit the central directory");

  std::vector<ZipEntry> out;
  out.reserve(count);
  uint64_t p = cd_off;
  const uint64_t end = cd_off + cd_size;
  for (uint64_t k = 0; k < count; ++k) {
    if (end - p < 46 || le(d + p, 4) != kCdirSig) bad("bad central directory entry");
    ZipEntry e;
    uint16_t flags = static_cast<uint16_t>(le(d + p + 8, 2));
    e.method = static_cast<uint16_t>(le(d + p + 10, 2));
    e.compressed_size = le(d + p + 20, 4);
    e.size = le(d + p + 24, 4);
    uint64_t name_len = le(d + p + 28, 2), extra_len = le(d + p + 30, 2), comment_len = le(d + p + 32, 2);
    uint64_t local = le(d + p + 42, 4);
    if (end - p - 46 < name_len + extra_len + comment_len) bad("central directory entry overruns");
    e.name.assign(reinterpret_cast<const char*>(d + p + 46), name_len);
    if (flags & 1) bad("encrypted entry '" + e.name + "'");
    // ZIP64 extended information: fields present only for values saturated above.
    const uint8_t* x = d + p + 46 + name_len;
    for (uint64_t q = 0; q + 4 <= extra_len;) {
      uint64_t id = le(x + q, 2), len = le(x + q + 2, 2);
      if (q + 4 + len > extra_len) bad("extra field overruns");
      if (id == 1) {
        uint64_t r = q + 4;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          if (r + 8 > q + 4 + len) bad("short ZIP64 field");
          field = le(x + r, 8);
          r += 8;
        };
        take(e.size);
        take(e.compressed_size);
        take(local);
      }
      q += 4 + len;
    }
    if (local > n - 30 || le(d + local, 4) != kLocalSig) bad("local header of '" + e.name + "' out of range");
    uint64_t lname = le(d + local + 26, 2), lextra = le(d + local + 28, 2);
    e.data_offset = local + 30 + lname + lextra;
    if (e.data_offset > n || e.compressed_size > n - e.data_offset)
      bad("data of '" + e.name + "' lies past the end of the file (truncated?)");
    // Stored entries are used in place: their size must be the bytes actually stored.
    if (e.method == 0 && e.size != e.compressed_size)
      bad("stored entry '" + e.name + "' claims " + std::to_string(e.size) + " bytes but holds " +
          std::to_string(e.compressed_size));
    out.push_back(std::move(e));
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

}  // namespace hallo::io
