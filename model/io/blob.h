#pragma once
// Byte buffers that tensors point into: a private memory map of a file
// (zero-copy, copy-on-write so a tensor made from it may be written safely),
// an owned vector, or a slice of another blob that keeps its parent alive.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

namespace hallo::io {

class Blob {
 public:
  virtual ~Blob() = default;
  virtual uint8_t* data() = 0;
  virtual size_t size() const = 0;
};
using BlobPtr = std::shared_ptr<Blob>;

// Maps the whole file (MAP_PRIVATE). Empty files give an empty blob.
BlobPtr map_file(const std::filesystem::path& path);
BlobPtr owned_blob(std::vector<uint8_t> bytes);
// [offset, offset+size) of parent; bounds are checked by the caller.
BlobPtr slice_blob(BlobPtr parent, size_t offset, size_t size);

}  // namespace hallo::io
