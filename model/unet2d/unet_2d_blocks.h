#pragma once
// UNet2D down / mid / up blocks. CrossAttnDownBlock2D and DownBlock2D share one
// class (the latter simply has no `attentions`), likewise for the up blocks, so
// the key layout (resnets.i, attentions.i, downsamplers.0 / upsamplers.0) is
// the same code path for both.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <map>
#include <string>
#include <vector>

#include "model/nn/resnet.h"
#include "model/nn/transformer_2d.h"

namespace hallo::model {

struct BlockOptions {
  int64_t in_channels = 0, out_channels = 0, temb_channels = 0;
  int64_t prev_output_channels = 0;  // up blocks: channels coming from the block below
  int64_t layers = 2;
  int64_t groups = 32;
  double eps = 1e-5;
  bool cross_attention = true;
  int64_t heads = 8;
  int64_t cross_attention_dim = 768;
  int64_t transformer_layers = 1;
  bool use_linear_projection = false;
  bool resample = true;  // add downsampler / upsampler
  int64_t downsample_padding = 1;
  double output_scale_factor = 1.0;
};

class DownBlock2DImpl : public torch::nn::Module {
 public:
  explicit DownBlock2DImpl(const BlockOptions& o);
  // x: [B, Cin, H, W] -> [B, Cout, H/2, W/2]; appends one skip per resnet (+1 after downsampling).
  at::Tensor forward(at::Tensor x, const at::Tensor& temb, const at::Tensor& context, std::vector<at::Tensor>& skips,
                     ReferenceBank* bank = nullptr);

  torch::nn::ModuleList resnets, attentions, downsamplers;
  std::vector<nn::ResnetBlock2D> res;
  std::vector<nn::Transformer2DModel> attn;
  nn::Downsample2D down{nullptr};
};
TORCH_MODULE(DownBlock2D);

class MidBlock2DCrossAttnImpl : public torch::nn::Module {
 public:
  explicit MidBlock2DCrossAttnImpl(const BlockOptions& o);
  at::Tensor forward(at::Tensor x, const at::Tensor& temb, const at::Tensor& context, ReferenceBank* bank = nullptr);

  torch::nn::ModuleList resnets, attentions;
  std::vector<nn::ResnetBlock2D> res;
  std::vector<nn::Transformer2DModel> attn;
};
TORCH_MODULE(MidBlock2DCrossAttn);

class UpBlock2DImpl : public torch::nn::Module {
 public:
  explicit UpBlock2DImpl(const BlockOptions& o);
  // Consumes layers+1 skips from the back of `skips`; upsamples to `up_size` when given.
  at::Tensor forward(at::Tensor x, std::vector<at::Tensor>& skips, const at::Tensor& temb, const at::Tensor& context,
                     c10::optional<std::vector<int64_t>> up_size, ReferenceBank* bank = nullptr);

  torch::nn::ModuleList resnets, attentions, upsamplers;
  std::vector<nn::ResnetBlock2D> res;
  std::vector<nn::Transformer2DModel> attn;
  nn::Upsample2D up{nullptr};
};
TORCH_MODULE(UpBlock2D);

}  // namespace hallo::model
