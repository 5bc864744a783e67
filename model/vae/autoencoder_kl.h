#pragma once
// diffusers AutoencoderKL (sd-vae-ft-mse topology): encoder -> quant_conv ->
// diagonal Gaussian; post_quant_conv -> decoder. Sizes from VaeConfig.
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <string>
#include <vector>

#include "model/nn/attention.h"
#include "model/nn/resnet.h"

namespace hallo::model {

struct VaeConfig {
  int64_t in_channels = 3, out_channels = 3, latent_channels = 4;
  std::vector<int64_t> block_out_channels{128, 256, 512, 512};
  int64_t layers_per_block = 2;
  int64_t norm_num_groups = 32;
  double scaling_factor = 0.18215;

  static VaeConfig sd_vae_ft_mse();
  static VaeConfig from_json(const nlohmann::json& j, const std::string& where);
};

struct DiagonalGaussian {
  at::Tensor mean, logvar;  // logvar clamped to [-30, 20] as diffusers does
  at::Tensor std() const;
  at::Tensor sample(c10::optional<at::Generator> gen = c10::nullopt) const;
};

// Encoder / decoder mid block: resnet -> attention (GroupNorm + 1 head) -> resnet.
class VaeMidBlockImpl : public torch::nn::Module {
 public:
  VaeMidBlockImpl(int64_t channels, int64_t groups);
  at::Tensor forward(at::Tensor x);
  torch::nn::ModuleList resnets, attentions;

 private:
  std::vector<nn::ResnetBlock2D> res_;
  nn::Attention attn_{nullptr};
};
TORCH_MODULE(VaeMidBlock);

// DownEncoderBlock2D / UpDecoderBlock2D: resnets + optional down/upsampler.
class VaeBlockImpl : public torch::nn::Module {
 public:
  VaeBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool down, bool up);
  at::Tensor forward(at::Tensor x);
  torch::nn::ModuleList resnets, downsamplers, upsamplers;

 private:
  std::vector<nn::ResnetBlock2D> res_;
  nn::Downsample2D down_{nullptr};
  nn::Upsample2D up_{nullptr};
};
TORCH_MODULE(VaeBlock);

class VaeCoderImpl : public torch::nn::Module {
 public:
  VaeCoderImpl(const VaeConfig& c, bool encoder);
  at::Tensor forward(at::Tensor x);
  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  VaeMidBlock mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  bool encoder_;
  std::vector<VaeBlock> blocks_;
};
TORCH_MODULE(VaeCoder);

class AutoencoderKLImpl : public torch::nn::Module {
 public:
  explicit AutoencoderKLImpl(const VaeConfig& c);
  // image in [-1, 1]: [B, 3, H, W] -> posterior over [B, 4, H/8, W/8]
  DiagonalGaussian encode(const at::Tensor& image);
  // z (unscaled latents): [B, 4, h, w] -> image [B, 3, 8h, 8w] in about [-1, 1]
  at::Tensor decode(const at::Tensor& z);
  const VaeConfig& config() const { return cfg_; }
  // Frees the decoder's weights (decoder, post_quant_conv) for a run that only encodes
  // (training without validation: ~60 % of the VAE); decode() then fails clearly.
  void release_decoder();
  bool has_decoder() const { return !decoder_released_; }

  VaeCoder encoder{nullptr}, decoder{nullptr};
  torch::nn::Conv2d quant_conv{nullptr}, post_quant_conv{nullptr};

 private:
  VaeConfig cfg_;
  bool decoder_released_ = false;
};
TORCH_MODULE(AutoencoderKL);

// Old checkpoints name the mid-block attention query/key/value/proj_attn; maps
// them to to_q/to_k/to_v/to_out.0. Other keys pass through unchanged.
std::string vae_translate_legacy_key(const std::string& key);

}  // namespace hallo::model
