#include "model/hallo/reference_bank.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"

namespace hallo::model {

void ReferenceBank::put(const std::string& path, at::Tensor features) {
  if (!features_.count(path)) order_.push_back(path);
  features_[path] = std::move(features);
}

const at::Tensor& ReferenceBank::get(const std::string& path) const {
  auto it = features_.find(path);
  if (it == features_.end()) fail("reference bank has no features for block '{}' ({} entries)", path, order_.size());
  return it->second;
}

void ReferenceBank::clear() {
  order_.clear();
  features_.clear();
}

namespace {
int section(const std::string& path) {  // down < up < mid, as upstream collects them
  if (path.rfind("down_blocks", 0) == 0) return 0;
  if (path.rfind("up_blocks", 0) == 0) return 1;
  return 2;
}
void upstream_sort(std::vector<BlockInfo>& v) {
  std::stable_sort(v.begin(), v.end(), [](const BlockInfo& a, const BlockInfo& b) { return section(a.path) < section(b.path); });
  std::stable_sort(v.begin(), v.end(), [](const BlockInfo& a, const BlockInfo& b) { return a.width > b.width; });
}
}  // namespace

std::vector<std::pair<std::string, std::string>> ReferenceBank::pair_blocks(std::vector<BlockInfo> writer,
                                                                          std::vector<BlockInfo> reader) {
  if (writer.size() != reader.size())
    fail("reference pairing: the reference net has {} transformer blocks, the denoising net {}", writer.size(), reader.size());
  upstream_sort(writer);
  upstream_sort(reader);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < writer.size(); ++i) {
    if (writer[i].width != reader[i].width)
      fail("reference pairing: block '{}' (width {}) pairs with '{}' (width {})", writer[i].path, writer[i].width,
           reader[i].path, reader[i].width);
    out.emplace_back(writer[i].path, reader[i].path);
  }
  return out;
}

ReferenceBank ReferenceBank::remapped(const std::vector<std::pair<std::string, std::string>>& pairs) const {
  ReferenceBank out;
  for (const auto& [w, r] : pairs) out.put(r, get(w));
  return out;
}

ReferenceBank ReferenceBank::to(c10::ScalarType dtype) const {
  ReferenceBank out;
  for (const auto& k : order_) out.put(k, features_.at(k).to(dtype));
  return out;
}

}  // namespace hallo::model
