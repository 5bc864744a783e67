#pragma once
// diffusers UNet2DConditionModel (SD1.5 topology; sizes from UNet2DConfig).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <string>

#include "model/nn/embeddings.h"
#include "model/unet2d/unet_2d_blocks.h"
#include "model/unet2d/unet_2d_config.h"

namespace hallo::model {

// Optional per-block outputs, keyed by module path ("down_blocks.0", "mid_block", ...).
using Hooks = std::map<std::string, at::Tensor>;

class UNet2DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet2DConditionModelImpl(const UNet2DConfig& c);
  // sample: [B, Cin, H, W], timestep: [B] or [] (int or float), context: [B, L, cross_dim]
  // -> [B, Cout, H, W]. When `hooks` is given, each top-level block's output is stored.
  // With `write_bank` (ReferenceNet write mode) every transformer block stores its norm1 features.
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& context,
                     Hooks* hooks = nullptr, ReferenceBank* write_bank = nullptr);
  // Every spatial BasicTransformerBlock with its path and width (for reference pairing).
  std::vector<BlockInfo> transformer_blocks() const;
  // Time embedding for the (broadcast) timesteps: [B, time_embed_dim].
  at::Tensor time_embed(const at::Tensor& timestep, int64_t batch, c10::ScalarType dtype);

  const UNet2DConfig& config() const { return cfg_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  nn::TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  std::vector<DownBlock2D> downs;
  std::vector<UpBlock2D> ups;
  MidBlock2DCrossAttn mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  UNet2DConfig cfg_;
  std::vector<nn::BasicTransformerBlock> tblocks_;
};
TORCH_MODULE(UNet2DConditionModel);

}  // namespace hallo::model
