#pragma once
// The neutral tensor record every reader produces and every writer/loader
// consumes: name, dtype, shape, and where the bytes are. Nothing here depends
// on libtorch, so the format parsers can be fuzzed and reused without it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/io/blob.h"
#include "model/io/dtype.h"

namespace hallo::io {

struct TensorRecord {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  // Element strides; empty means contiguous (row-major). Pickled views carry
  // real strides, and several records may share one storage blob.
  std::vector<int64_t> strides;
  BlobPtr storage;          // the bytes (whole storage for views)
  uint64_t offset = 0;      // byte offset of element [0,...,0] inside storage

  int64_t numel() const;
  uint64_t nbytes() const { return static_cast<uint64_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  std::vector<int64_t> contiguous_strides() const;
  const uint8_t* data() const { return storage ? storage->data() + offset : nullptr; }
};

// Checks that every element of a (possibly strided) view lies inside
// [0, storage_bytes) given its byte offset; throws hallo::Error naming `where`.
void check_view_bounds(const std::string& where, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides, DType dtype, uint64_t offset,
                       uint64_t storage_bytes);

// Everything read from one weights source (file or folder).
struct WeightSet {
  std::string format;   // "safetensors", "torch-zip", "torch-legacy", "diffusers"
  std::string source;   // path it came from
  std::vector<TensorRecord> tensors;               // sorted by name
  std::map<std::string, std::string> metadata;     // safetensors __metadata__ or pickle scalars
  std::string config_json;                          // config.json text for folders, else empty

  uint64_t total_bytes() const;
  const TensorRecord* find(const std::string& name) const;
  void sort_by_name();
};

}  // namespace hallo::io
