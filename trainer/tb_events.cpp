#include "trainer/tb_events.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>

#include "core/error.h"

namespace hallo::trainer {

namespace {

std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // reflected Castagnoli polynomial
    t[i] = c;
  }
  return t;
}

// Protobuf wire format: varint keys and lengths, little-endian fixed64 / fixed32.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void key(std::string& out, int field, int wire) { varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire)); }
template <typename T>
void fixed(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86-64 and aarch64 are little-endian, as protobuf wants
  out.append(b, sizeof(T));
}
void bytes_field(std::string& out, int field, const std::string& s) {
  key(out, field, 2);
  varint(out, s.size());
  out += s;
}

// tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5.
std::string event(double wall_time, int64_t step) {
  std::string e;
  key(e, 1, 1);
  fixed(e, wall_time);
  key(e, 2, 0);
  varint(e, static_cast<uint64_t>(step));
  return e;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

uint32_t crc32c(const void* data, size_t n) {
  static const auto table = make_table();
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

EventWriter::EventWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  char host[256] = "localhost";
  ::gethostname(host, sizeof(host) - 1);
  static std::atomic<int> counter{0};
  path_ = dir / ("events.out.tfevents." + std::to_string(static_cast<int64_t>(now_seconds())) + "." + host + "." +
                 std::to_string(::getpid()) + "." + std::to_string(counter++));
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) fail_at(path_.string(), "cannot create the TensorBoard event file");
  std::string e = event(now_seconds(), 0);
  bytes_field(e, 3, "brain.Event:2");
  record(e);
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::record(const std::string& payload) {
  const uint64_t len = payload.size();
  const uint32_t len_crc = masked_crc32c(&len, sizeof(len));
  const uint32_t data_crc = masked_crc32c(payload.data(), payload.size());
  bool ok = std::fwrite(&len, sizeof(len), 1, f_) == 1 && std::fwrite(&len_crc, sizeof(len_crc), 1, f_) == 1 &&
            std::fwrite(payload.data(), 1, payload.size(), f_) == payload.size() &&
            std::fwrite(&data_crc, sizeof(data_crc), 1, f_) == 1;
  if (!ok) fail_at(path_.string(), "write failed (disk full?)");
}

void EventWriter::scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values, double wall_time) {
  std::string summary;
  for (const auto& [tag, v] : values) {
    std::string value;  // Summary.Value: tag = 1, simple_value = 2 (float)
    bytes_field(value, 1, tag);
    key(value, 2, 5);
    fixed(value, static_cast<float>(v));
    bytes_field(summary, 1, value);
  }
  std::string e = event(wall_time >= 0 ? wall_time : now_seconds(), step);
  bytes_field(e, 5, summary);
  record(e);
}

void EventWriter::flush() {
  if (f_) std::fflush(f_);
}

}  // namespace hallo::trainer
