#include "core/atomic_file.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace hallo {

namespace {
std::atomic<unsigned> g_counter{0};
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  auto dir = target_.parent_path();
  if (!dir.empty() && !std::filesystem::is_directory(dir))
    fail_at(target_.string(), "output directory '{}' does not exist", dir.string());
  temp_ = target_;
  temp_ += fmt::format(".tmp-{}-{}", ::getpid(), g_counter++);
  fp_ = std::fopen(temp_.c_str(), "wb");
  if (!fp_) fail_at(target_.string(), "cannot create temp file: {}", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fp_) std::fclose(fp_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t n) {
  if (!fp_) fail_at(target_.string(), "write after commit");
  if (n && std::fwrite(data, 1, n, fp_) != n)
    fail_at(target_.string(), "write failed: {}", std::strerror(errno));
}

void AtomicFile::commit() {
  if (!fp_) fail_at(target_.string(), "commit twice");
  if (std::fflush(fp_) != 0 || ::fsync(::fileno(fp_)) != 0) {
    fail_at(target_.string(), "flush failed: {}", std::strerror(errno));
  }
  std::fclose(fp_);
  fp_ = nullptr;
  std::error_code ec;
  std::filesystem::rename(temp_, target_, ec);
  if (ec) fail_at(target_.string(), "cannot rename temp file into place: {}", ec.message());
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& target, const std::string& contents) {
  AtomicFile f(target);
  f.write(contents);
  f.commit();
}

}  // namespace hallo
