#include "model/io/tensor_record.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace hallo::io {

int64_t TensorRecord::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::vector<int64_t> TensorRecord::contiguous_strides() const {
  std::vector<int64_t> st(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * std::max<int64_t>(shape[i + 1], 1);
  return st;
}

bool TensorRecord::is_contiguous() const {
  if (strides.empty() || numel() <= 1) return true;
  auto c = contiguous_strides();
  for (size_t i = 0; i < shape.size(); ++i)
    if (shape[i] != 1 && strides[i] != c[i]) return false;
  return true;
}

void check_view_bounds(const std::string& where, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides, DType dtype, uint64_t offset,
                       uint64_t storage_bytes) {
  if (!strides.empty() && strides.size() != shape.size())
    fail_at(where, "shape has {} dims but stride has {}", shape.size(), strides.size());
  // Largest element index reachable by the view, computed without overflow.
  constexpr uint64_t kMax = std::numeric_limits<int64_t>::max() / 16;
  uint64_t numel = 1, last = 0, stride = 1;
  bool empty = false;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    int64_t s = shape[i];
    if (s < 0) fail_at(where, "negative dimension {} in shape", s);
    if (s == 0) empty = true;
    int64_t st = strides.empty() ? static_cast<int64_t>(stride) : strides[i];
    if (st < 0) fail_at(where, "negative stride {}", st);
    if (s > 0) {
      if (static_cast<uint64_t>(s) > kMax / std::max<uint64_t>(numel, 1))
        fail_at(where, "shape is too large");
      numel *= static_cast<uint64_t>(s);
      uint64_t span = static_cast<uint64_t>(s - 1);
      if (st != 0 && span > kMax / static_cast<uint64_t>(st)) fail_at(where, "stride is too large");
      last += span * static_cast<uint64_t>(st);
      if (last > kMax) fail_at(where, "view is too large");
    }
    stride = std::max<uint64_t>(stride * std::max<int64_t>(s, 1), 1);
    if (stride > kMax) fail_at(where, "shape is too large");
  }
  if (empty) return;
  const uint64_t es = dtype_size(dtype);
  const uint64_t end = offset + (last + 1) * es;
  if (offset > storage_bytes || end > storage_bytes)
    fail_at(where, "tensor data [{}, {}) lies outside its storage of {} bytes", offset, end,
            storage_bytes);
}

uint64_t WeightSet::total_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors) n += t.nbytes();
  return n;
}

const TensorRecord* WeightSet::find(const std::string& name) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), name,
                             [](const TensorRecord& r, const std::string& n) { return r.name < n; });
  return (it != tensors.end() && it->name == name) ? &*it : nullptr;
}

void WeightSet::sort_by_name() {
  std::stable_sort(tensors.begin(), tensors.end(),
                   [](const TensorRecord& a, const TensorRecord& b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i)
    if (tensors[i].name == tensors[i - 1].name)
      fail_at(source, "duplicate tensor name '{}'", tensors[i].name);
}

}  // namespace hallo::io
