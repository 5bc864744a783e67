#pragma once
// TensorBoard event files (events.out.tfevents.*), so `tensorboard --logdir RUN_DIR`
// plots the training scalars. The format is TFRecord framing (length, masked
// CRC-32C of the length, payload, masked CRC-32C of the payload) around
// tensorflow.Event protobufs; only scalars are written, so the few protobuf fields
// are encoded here (no protobuf compiler, no TensorFlow), as is CRC-32C (no Debian
// package provides it).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace hallo::trainer {

class EventWriter {
 public:
  // Creates <dir>/events.out.tfevents.<unix time>.<host>.<pid>.<n> and writes the version record.
  explicit EventWriter(const std::filesystem::path& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values, double wall_time = -1);
  void flush();
  const std::filesystem::path& path() const { return path_; }

 private:
  void record(const std::string& payload);
  std::filesystem::path path_;
  std::FILE* f_ = nullptr;
};

// CRC-32C (Castagnoli), and TFRecord's masked form. Exposed for tests.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

}  // namespace hallo::trainer
