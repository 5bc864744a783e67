#pragma once
// SyncNet (syncnet_python SyncNetModel.S, the Sync-C / Sync-D network): an
// audio tower on 13x20 MFCC windows (netcnnaud + netfcaud) and a lip tower on 5
// consecutive 224x224 BGR face crops with raw 0..255 values (netcnnlip +
// netfclip), both ending in 1024-d embeddings that are not normalised. Key
// names equal syncnet_v2.model's (no num_batches_tracked: the file predates them).
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <map>
#include <string>

#include "model/io/state_dict.h"

namespace hallo::eval::nets {

class SyncNetImpl : public torch::nn::Module {
 public:
  explicit SyncNetImpl(int64_t num_layers_in_fc_layers = 1024);

  // [N,1,13,20] MFCC windows -> [N,1024]. `hooks` (optional): "netcnnaud.<i>" = layer i's
  // output averaged over its spatial positions ([N,C]), "netfcaud.<i>" unaveraged.
  at::Tensor forward_aud(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks = nullptr);
  // [N,3,5,224,224] BGR 0..255 -> [N,1024] (hooks "netcnnlip.<i>", "netfclip.<i>").
  at::Tensor forward_lip(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks = nullptr);
  // [N,3,5,224,224] -> [N,512]: the lip tower before its fc layers.
  at::Tensor forward_lipfeat(const at::Tensor& x);

  torch::nn::Sequential netcnnaud{nullptr}, netfcaud{nullptr}, netcnnlip{nullptr}, netfclip{nullptr};
};
TORCH_MODULE(SyncNet);

SyncNet load_syncnet(const io::StateDict& sd, const std::string& source);
SyncNet load_syncnet(const std::filesystem::path& weights);  // syncnet_v2.model (torch pickle) or .safetensors

}  // namespace hallo::eval::nets
