#include "eval/nets/frozen_bn.h"

#include <ATen/ATen.h>

#include <set>
#include <string>

namespace hallo::eval::nets {

FrozenBatchNormImpl::FrozenBatchNormImpl(int64_t channels, double eps_, bool with_num_batches_tracked) : eps(eps_) {
  weight = register_parameter("weight", at::ones({channels}), /*requires_grad=*/false);
  bias = register_parameter("bias", at::zeros({channels}), false);
  running_mean = register_buffer("running_mean", at::zeros({channels}));
  running_var = register_buffer("running_var", at::ones({channels}));
  if (with_num_batches_tracked) register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
}

at::Tensor FrozenBatchNormImpl::forward(const at::Tensor& x) {
  return at::batch_norm(x, weight, bias, running_mean, running_var, /*training=*/false, 0.0, eps,
                        /*cudnn_enabled=*/true);
}

io::StateDict align_num_batches_tracked(const io::StateDict& sd, torch::nn::Module& m) {
  static const std::string kSuffix = "num_batches_tracked";
  auto is_counter = [](const std::string& k) {
    return k.size() >= kSuffix.size() && k.compare(k.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0;
  };
  std::set<std::string> wanted;
  for (const auto& b : m.named_buffers())
    if (is_counter(b.key())) wanted.insert(b.key());
  io::WeightSet ws = sd.weights();
  ws.tensors.clear();
  for (const auto& r : sd.weights().tensors)
    if (!is_counter(r.name) || wanted.count(r.name)) ws.tensors.push_back(r);
  for (const auto& k : wanted)
    if (!sd.contains(k)) ws.tensors.push_back(io::from_tensor(k, at::zeros({}, at::kLong)));
  ws.sort_by_name();
  return io::StateDict(std::move(ws));
}

}  // namespace hallo::eval::nets
