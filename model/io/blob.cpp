#include "model/io/blob.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace hallo::io {

namespace {

class MappedBlob final : public Blob {
 public:
  MappedBlob(void* p, size_t n) : p_(static_cast<uint8_t*>(p)), n_(n) {}
  ~MappedBlob() override {
    if (p_) ::munmap(p_, n_);
  }
  uint8_t* data() override { return p_; }
  size_t size() const override { return n_; }

 private:
  uint8_t* p_;
  size_t n_;
};

class OwnedBlob final : public Blob {
 public:
  explicit OwnedBlob(std::vector<uint8_t> v) : v_(std::move(v)) {}
  uint8_t* data() override { return v_.data(); }
  size_t size() const override { return v_.size(); }

 private:
  std::vector<uint8_t> v_;
};

class SliceBlob final : public Blob {
 public:
  SliceBlob(BlobPtr parent, size_t off, size_t n) : parent_(std::move(parent)), off_(off), n_(n) {}
  uint8_t* data() override { return parent_->data() + off_; }
  size_t size() const override { return n_; }

 private:
  BlobPtr parent_;
  size_t off_, n_;
};

}  // namespace

BlobPtr map_file(const std::filesystem::path& path) {
  const std::string where = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail_at(where, "cannot open: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail_at(where, "cannot stat: {}", std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail_at(where, "is a directory, expected a file");
  }
  const size_t n = static_cast<size_t>(st.st_size);
  if (n == 0) {
    ::close(fd);
    return owned_blob({});
  }
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) fail_at(where, "cannot map: {}", std::strerror(e));
  return std::make_shared<MappedBlob>(p, n);
}

BlobPtr owned_blob(std::vector<uint8_t> bytes) { return std::make_shared<OwnedBlob>(std::move(bytes)); }

BlobPtr slice_blob(BlobPtr parent, size_t offset, size_t size) {
  return std::make_shared<SliceBlob>(std::move(parent), offset, size);
}

}  // namespace hallo::io
