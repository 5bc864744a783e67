#pragma once
// Strict, reportable state-dict loading onto a libtorch module tree:
// named_parameters() + named_buffers() are matched name-for-name against a
// StateDict (after an optional key translation), shapes are checked, values are
// copied under NoGradGuard with dtype conversion. One error lists every
// missing, unexpected and mis-shaped tensor by name.
#include <torch/nn/module.h>

#include <functional>
#include <string>
#include <vector>

#include "model/io/state_dict.h"

namespace hallo::nn {

struct LoadOptions {
  bool strict = true;  // false: load what matches, report the rest (`--non-strict`)
  // Maps a checkpoint key to the module's name; empty result drops the key.
  std::function<std::string(const std::string&)> rename;
};

struct LoadReport {
  std::string source;
  size_t loaded = 0;
  std::vector<std::string> missing, unexpected, mismatched;  // mismatched: "name: file [..] vs model [..]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  std::string summary() const;  // multi-line, every key named
};

LoadReport load_weights(torch::nn::Module& module, const io::StateDict& sd, const LoadOptions& opts = {});

}  // namespace hallo::nn
