#pragma once
// diffusers ResnetBlock2D, Downsample2D and Upsample2D (key names norm1, conv1,
// time_emb_proj, norm2, conv2, conv_shortcut; downsamplers.0.conv; upsamplers.0.conv).
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace hallo::nn {

struct ResnetOptions {
  int64_t in_channels = 0, out_channels = 0;
  int64_t temb_channels = 0;  // 0: no time embedding (VAE)
  int64_t groups = 32;
  double eps = 1e-6;
  double output_scale_factor = 1.0;
};

class ResnetBlock2DImpl : public torch::nn::Module {
 public:
  explicit ResnetBlock2DImpl(const ResnetOptions& o);
  // x: [B, Cin, H, W], temb: [B, T] or undefined -> [B, Cout, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& temb = {});
  // No parameter requires grad. Then, with a gradient flowing to x only, forward keeps
  // just x and conv1's output h for backward (autograd keeps six activations, and a
  // checkpointed unit recomputes both convolutions); backward recomputes the cheap
  // GroupNorm + SiLU from them and calls the same backward ops autograd would, so
  // the gradient is bitwise the same (model/nn/resnet_frozen.cpp).
  bool frozen() const;
  // The plain forward, recording whatever autograd records; `h` (optional) receives
  // conv1's output plus the time embedding (norm2's input).
  at::Tensor forward_plain(const at::Tensor& x, const at::Tensor& temb, at::Tensor* h = nullptr);
  double output_scale() const { return scale_; }

  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
  torch::nn::Linear time_emb_proj{nullptr};

 private:
  double scale_;
};
TORCH_MODULE(ResnetBlock2D);

class Downsample2DImpl : public torch::nn::Module {
 public:
  // padding 1: conv pads (UNet); padding 0: pad right/bottom by one first (VAE encoder).
  Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Conv2d conv{nullptr};

 private:
  int64_t padding_;
};
TORCH_MODULE(Downsample2D);

class Upsample2DImpl : public torch::nn::Module {
 public:
  Upsample2DImpl(int64_t channels, int64_t out_channels);
  // Nearest 2x, or to `size` ({H, W}) when the skip connection's size is given.
  at::Tensor forward(const at::Tensor& x, c10::optional<std::vector<int64_t>> size = c10::nullopt);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Upsample2D);

}  // namespace hallo::nn
