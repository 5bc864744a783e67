#pragma once
// Crash-safe output: bytes go to "<path>.tmp-<pid>-<n>" in the destination
// directory and only a successful commit() renames them over <path>. A
// destroyed, uncommitted AtomicFile removes its temp file, so a failure never
// leaves a half-written or clobbered output behind.
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <string>

namespace hallo {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Flushes, fsyncs and renames onto the target. After this the object is inert.
  void commit();

  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& temp_path() const { return temp_; }

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  std::FILE* fp_ = nullptr;
  bool committed_ = false;
};

// Convenience: write a whole string atomically.
void write_file_atomic(const std::filesystem::path& target, const std::string& contents);

}  // namespace hallo
