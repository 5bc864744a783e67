#pragma once
// Inference-only BatchNorm for the metric networks: the four buffers the released
// weight files carry (weight, bias, running_mean, running_var) and, only when the
// file layout has it, num_batches_tracked. torch::nn::BatchNorm always registers
// num_batches_tracked, which old files (syncnet_v2.model, VideoGPT's I3D) lack, so
// strict loading would report it missing. Works on [N,C], [N,C,H,W] and [N,C,T,H,W].
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include "model/io/state_dict.h"

namespace hallo::eval::nets {

class FrozenBatchNormImpl : public torch::nn::Module {
 public:
  FrozenBatchNormImpl(int64_t channels, double eps, bool with_num_batches_tracked);
  at::Tensor forward(const at::Tensor& x);  // eval-mode batch norm, x [N,C,...]

  at::Tensor weight, bias, running_mean, running_var;
  double eps;
};
TORCH_MODULE(FrozenBatchNorm);

// BatchNorm's num_batches_tracked counters are never read at inference, and whether a
// file has them depends on the torch version that saved it (PyTorch loads either way):
// drops the file's counters the module lacks and adds zero counters the module has but
// the file lacks, so strict loading checks only the tensors that matter.
io::StateDict align_num_batches_tracked(const io::StateDict& sd, torch::nn::Module& m);

}  // namespace hallo::eval::nets
