#pragma once
// Hallo FaceLocator: a stack of "inflated" 3x3 convs (2-D convs applied to every
// frame, frames folded into the batch) that turns the face-region mask video
// into a feature map at latent resolution, added to the denoising UNet3D's
// conv_in output. Keys: conv_in, blocks.0..2(n-1)-1, conv_out.
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <map>
#include <string>
#include <vector>

namespace hallo::model {

struct FaceLocatorConfig {
  // Upstream makes this a required argument; Hallo always passes 320 (SD1.5's conv_in width).
  int64_t conditioning_embedding_channels = 320;
  int64_t conditioning_channels = 3;
  // Upstream default and Hallo's value. (train_stage1's optional "pretrained
  // face locator" path uses (16, 32, 96, 256) with strict=False loading.)
  std::vector<int64_t> block_out_channels{16, 32, 64, 128};

  static FaceLocatorConfig hallo();
  // conditioning_embedding_channels is required (as upstream); the rest default.
  static FaceLocatorConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
  // Spatial reduction: 2 per stride-2 block (8 for four block_out_channels).
  int64_t downscale_factor() const;
};

class FaceLocatorImpl : public torch::nn::Module {
 public:
  explicit FaceLocatorImpl(const FaceLocatorConfig& c);
  // conditioning: [B, C, F, H, W] -> [B, Cout, F, ceil(H/8), ceil(W/8)] (for 4 block widths).
  // When `hooks` is given, every conv's output (before its SiLU) is stored as
  // [B, C', F, H', W'] under its module path: "conv_in", "blocks.i", "conv_out".
  at::Tensor forward(const at::Tensor& conditioning, std::map<std::string, at::Tensor>* hooks = nullptr);
  const FaceLocatorConfig& config() const { return cfg_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  torch::nn::ModuleList blocks;

 private:
  FaceLocatorConfig cfg_;
  std::vector<torch::nn::Conv2d> block_convs_;
};
TORCH_MODULE(FaceLocator);

}  // namespace hallo::model
