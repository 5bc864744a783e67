#pragma once
// The LoRA settings (model/nn/lora.h), on their own so configs do not pull in the nets.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hallo::nn {

struct LoraConfig {
  int64_t rank = 0;   // 0: no adapters
  double alpha = 0;   // 0: alpha = rank (scaling 1)
  // Projections to adapt, by upstream name.
  std::vector<std::string> targets = {"to_q", "to_k", "to_v", "to_out.0"};
  // Regexes (ECMAScript, searched) over the attention module's name in net.pth layout;
  // an attention is adapted when one matches. Each must match at least one attention.
  std::vector<std::string> patterns = {"."};

  bool enabled() const { return rank > 0; }
  double scaling() const { return (alpha > 0 ? alpha : static_cast<double>(rank)) / static_cast<double>(rank); }
  nlohmann::json to_json() const;
  // {"rank", "alpha", "targets", "patterns"}; null or absent: disabled. Unknown keys are errors.
  static LoraConfig from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace hallo::nn
