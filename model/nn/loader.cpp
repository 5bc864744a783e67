#include "model/nn/loader.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <map>
#include <set>

#include "core/error.h"

namespace hallo::nn {

std::string LoadReport::summary() const {
  std::string s = fmt::format("{}: loaded {} tensors", source, loaded);
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += fmt::format("\n  {} {}:", v.size(), what);
    for (const auto& k : v) s += "\n    " + k;
  };
  list("missing (in the model, not in the file)", missing);
  list("unexpected (in the file, not in the model)", unexpected);
  list("mis-shaped", mismatched);
  return s;
}

LoadReport load_weights(torch::nn::Module& module, const io::StateDict& sd, const LoadOptions& opts) {
  LoadReport rep;
  rep.source = sd.weights().source;
  std::map<std::string, at::Tensor> targets;
  for (const auto& p : module.named_parameters(true)) targets[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) targets[b.key()] = b.value();

  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& key : sd.keys()) {
    const std::string name = opts.rename ? opts.rename(key) : key;
    if (name.empty()) continue;
    auto it = targets.find(name);
    if (it == targets.end()) {
      rep.unexpected.push_back(name == key ? key : fmt::format("{} (as {})", key, name));
      continue;
    }
    if (!seen.insert(name).second) fail_at(rep.source, "two tensors map to '{}'", name);
    const io::TensorRecord& r = sd.record(key);
    if (at::IntArrayRef(r.shape) != it->second.sizes()) {
      rep.mismatched.push_back(fmt::format("{}: file [{}] vs model [{}]", name, fmt::join(r.shape, ", "),
                                           fmt::join(it->second.sizes(), ", ")));
      continue;
    }
    it->second.copy_(io::to_tensor(r));
    ++rep.loaded;
  }
  for (const auto& [name, t] : targets)
    if (!seen.count(name)) rep.missing.push_back(name);
  if (opts.strict && !rep.ok()) throw Error(rep.summary());
  return rep;
}

}  // namespace hallo::nn
