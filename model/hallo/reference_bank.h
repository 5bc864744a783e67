#pragma once
// The reference bank passed explicitly from ReferenceNet (write mode) to the
// denoising UNet3D (read mode): for every spatial BasicTransformerBlock the
// norm1 features of the reference batch [ref, motion_1..n] x CFG halves.
// Keys are the reader's block paths ("down_blocks.0.attentions.1.transformer_blocks.0").
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace hallo::model {

struct BlockInfo {
  std::string path;  // module path of the BasicTransformerBlock
  int64_t width;     // its norm1 width (channels)
};

class ReferenceBank {
 public:
  void put(const std::string& path, at::Tensor features);  // [N, L, C]
  const at::Tensor& get(const std::string& path) const;    // throws naming the path
  bool contains(const std::string& path) const { return features_.count(path) != 0; }
  const std::vector<std::string>& order() const { return order_; }  // write order
  size_t size() const { return order_.size(); }
  void clear();

  // Upstream's pairing (ReferenceAttentionControl, fusion "full"): both block lists
  // are sorted by width, descending and stable, from the order down, up, mid; then
  // paired index by index. Returns (writer path, reader path) pairs.
  static std::vector<std::pair<std::string, std::string>> pair_blocks(std::vector<BlockInfo> writer,
                                                                      std::vector<BlockInfo> reader);
  // The same features keyed by the reader's paths.
  ReferenceBank remapped(const std::vector<std::pair<std::string, std::string>>& pairs) const;
  // Upstream casts the bank to float16 when handing it over (a quirk kept by default).
  ReferenceBank to(c10::ScalarType dtype) const;

 private:
  std::vector<std::string> order_;
  std::map<std::string, at::Tensor> features_;
};

}  // namespace hallo::model
