#pragma once
// StateDict: named tensors from any weights source, viewed as libtorch
// tensors on demand (zero-copy from the memory map where alignment allows).
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/io/tensor_record.h"

namespace hallo::io {

c10::ScalarType to_scalar_type(DType d);
DType from_scalar_type(c10::ScalarType t);  // throws for unsupported types

// A tensor viewing the record's bytes. Shares memory with the source when the
// data pointer is aligned for the dtype; otherwise copies. The tensor keeps the
// underlying file mapping alive.
at::Tensor to_tensor(const TensorRecord& r);
// A record owning a contiguous CPU copy (or the tensor itself when already contiguous CPU).
TensorRecord from_tensor(const std::string& name, const at::Tensor& t);

// Keeps only tensors whose name starts with `prefix`; strips it when `strip`.
WeightSet select_prefix(const WeightSet& ws, const std::string& prefix, bool strip = true);
// Removes `prefix` from names that start with it; others are kept unchanged.
WeightSet strip_prefix(const WeightSet& ws, const std::string& prefix);

class StateDict {
 public:
  StateDict() = default;
  explicit StateDict(WeightSet ws) : ws_(std::move(ws)) {}
  static StateDict open(const std::filesystem::path& path);

  size_t size() const { return ws_.tensors.size(); }
  bool contains(const std::string& name) const { return ws_.find(name) != nullptr; }
  std::vector<std::string> keys() const;
  const TensorRecord& record(const std::string& name) const;  // throws naming the key and source
  at::Tensor tensor(const std::string& name) const;
  StateDict with_prefix(const std::string& prefix) const { return StateDict(select_prefix(ws_, prefix, true)); }
  const WeightSet& weights() const { return ws_; }

 private:
  WeightSet ws_;
};

}  // namespace hallo::io
