#pragma once
// Hallo's hierarchical audio attention (upstream AudioTemporalBasicTransformerBlock
// inside a Transformer3DModel with use_audio_module): per frame, self-attention,
// then three audio cross-attentions (attn2_0/1/2) gated by the full(pose)/face/lip
// masks of the block's level, each through a 1x1 zero_conv, weighted by motion_scale.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/nn/attention.h"
#include "model/nn/transformer_2d.h"

namespace hallo::model {

// Region masks per level (level 0 = full latent resolution, each next level halves it):
// each tensor [B*F, H_l*W_l].
struct AudioMasks {
  std::vector<at::Tensor> full, face, lip;
};

struct AudioBlockOptions {
  int64_t dim = 0, heads = 8, dim_head = 0;
  int64_t audio_dim = 768;
  bool stacked = true;  // attn2_0/1/2 (stack_enable_blocks); false: one plain attn2
  int64_t level = 0;    // mask level = the block's depth
};

class AudioTemporalBasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit AudioTemporalBasicTransformerBlockImpl(const AudioBlockOptions& o);
  // x: [B*F, H*W, dim], audio: [B*F, T, audio_dim], motion_scale: [3] or undefined -> [B*F, H*W, dim]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& audio, const AudioMasks& masks,
                     const at::Tensor& motion_scale, int64_t h, int64_t w);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  nn::Attention attn1{nullptr}, attn2{nullptr}, attn2_0{nullptr}, attn2_1{nullptr}, attn2_2{nullptr};
  torch::nn::Conv2d zero_conv_full{nullptr}, zero_conv_face{nullptr}, zero_conv_lip{nullptr};
  nn::FeedForward ff{nullptr};

 private:
  int64_t level_;
};
TORCH_MODULE(AudioTemporalBasicTransformerBlock);

struct AudioTransformerOptions {
  int64_t channels = 0;  // block width (norm, proj_in input, proj_out output)
  // Quirk: the attention width is heads * (block INPUT channels / heads), not `channels`.
  int64_t input_channels = 0;
  int64_t heads = 8, groups = 32;
  int64_t audio_dim = 768;
  bool stacked = true;
  int64_t level = 0;
};

// audio_modules.J: norm, proj_in (1x1), transformer_blocks.0, proj_out (1x1), residual.
class AudioTransformer3DModelImpl : public torch::nn::Module {
 public:
  explicit AudioTransformer3DModelImpl(const AudioTransformerOptions& o);
  // x: [B*F, C, H, W] (frames folded), audio: [B, F, T, D] -> [B*F, C, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& audio, const AudioMasks& masks,
                     const at::Tensor& motion_scale);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Conv2d proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks;
  std::vector<AudioTemporalBasicTransformerBlock> blocks;
};
TORCH_MODULE(AudioTransformer3DModel);

}  // namespace hallo::model
