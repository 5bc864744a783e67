#include "model/io/state_dict.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/weights.h"

namespace hallo::io {

c10::ScalarType to_scalar_type(DType d) {
  switch (d) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  fail("bad dtype");
}

DType from_scalar_type(c10::ScalarType t) {
  switch (t) {
    case at::kDouble: return DType::F64;
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kLong: return DType::I64;
    case at::kInt: return DType::I32;
    case at::kShort: return DType::I16;
    case at::kChar: return DType::I8;
    case at::kByte: return DType::U8;
    case at::kBool: return DType::BOOL;
    default: fail("tensor dtype {} has no weights-file equivalent", c10::toString(t));
  }
}

namespace {

// Keeps a tensor's memory alive for records made from it.
class TensorBlob final : public Blob {
 public:
  explicit TensorBlob(at::Tensor t) : t_(std::move(t)) {}
  uint8_t* data() override { return static_cast<uint8_t*>(t_.data_ptr()); }
  size_t size() const override { return t_.nbytes(); }

 private:
  at::Tensor t_;
};

}  // namespace

at::Tensor to_tensor(const TensorRecord& r) {
  const auto opts = at::TensorOptions().dtype(to_scalar_type(r.dtype));
  if (r.numel() == 0) return at::empty(r.shape, opts);
  auto strides = r.strides.empty() ? r.contiguous_strides() : r.strides;
  uint8_t* p = r.storage->data() + r.offset;
  if (reinterpret_cast<uintptr_t>(p) % dtype_size(r.dtype) != 0) {
    // Misaligned (e.g. a safetensors header not padded to 8): typed loads need a copy.
    auto out = at::empty(r.shape, opts);
    TensorRecord tmp = r;
    copy_contiguous(tmp, static_cast<uint8_t*>(out.data_ptr()));
    return out;
  }
  BlobPtr keep = r.storage;
  return at::from_blob(p, r.shape, strides, [keep](void*) mutable { keep.reset(); }, opts);
}

TensorRecord from_tensor(const std::string& name, const at::Tensor& t) {
  at::Tensor c = t.device().is_cpu() ? t.contiguous() : t.to(at::kCPU).contiguous();
  TensorRecord r;
  r.name = name;
  r.dtype = from_scalar_type(c.scalar_type());
  r.shape = c.sizes().vec();
  r.storage = std::make_shared<TensorBlob>(c);
  r.offset = 0;
  return r;
}

WeightSet select_prefix(const WeightSet& ws, const std::string& prefix, bool strip) {
  WeightSet out;
  out.format = ws.format;
  out.source = ws.source;
  out.metadata = ws.metadata;
  out.config_json = ws.config_json;
  for (const auto& t : ws.tensors) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    TensorRecord r = t;
    if (strip) r.name = t.name.substr(prefix.size());
    if (r.name.empty()) fail_at(ws.source, "tensor '{}' has an empty name after stripping '{}'", t.name, prefix);
    out.tensors.push_back(std::move(r));
  }
  out.sort_by_name();
  return out;
}

WeightSet strip_prefix(const WeightSet& ws, const std::string& prefix) {
  WeightSet out = ws;
  for (auto& t : out.tensors)
    if (t.name.rfind(prefix, 0) == 0 && t.name.size() > prefix.size()) t.name = t.name.substr(prefix.size());
  out.sort_by_name();  // a clash ("a.w" and "w" with prefix "a.") is reported as a duplicate
  return out;
}

StateDict StateDict::open(const std::filesystem::path& path) { return StateDict(open_weights(path)); }

std::vector<std::string> StateDict::keys() const {
  std::vector<std::string> k;
  k.reserve(ws_.tensors.size());
  for (const auto& t : ws_.tensors) k.push_back(t.name);
  return k;
}

const TensorRecord& StateDict::record(const std::string& name) const {
  const TensorRecord* r = ws_.find(name);
  if (!r) fail_at(ws_.source, "no tensor named '{}'", name);
  return *r;
}

at::Tensor StateDict::tensor(const std::string& name) const { return to_tensor(record(name)); }

}  // namespace hallo::io
