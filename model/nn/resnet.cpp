#include "model/nn/resnet.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/padding.h>
#include <torch/nn/functional/upsampling.h>

#include "model/nn/debug.h"
#include "model/nn/resnet_frozen.h"

namespace hallo::nn {

namespace tnn = torch::nn;
namespace F = torch::nn::functional;

ResnetBlock2DImpl::ResnetBlock2DImpl(const ResnetOptions& o) : scale_(o.output_scale_factor) {
  norm1 = register_module("norm1", tnn::GroupNorm(tnn::GroupNormOptions(o.groups, o.in_channels).eps(o.eps)));
  conv1 = register_module("conv1", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels, o.out_channels, 3).padding(1)));
  if (o.temb_channels > 0)
    time_emb_proj = register_module("time_emb_proj", tnn::Linear(o.temb_channels, o.out_channels));
  norm2 = register_module("norm2", tnn::GroupNorm(tnn::GroupNormOptions(o.groups, o.out_channels).eps(o.eps)));
  conv2 = register_module("conv2", tnn::Conv2d(tnn::Conv2dOptions(o.out_channels, o.out_channels, 3).padding(1)));
  if (o.in_channels != o.out_channels)
    conv_shortcut = register_module("conv_shortcut", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels, o.out_channels, 1)));
}

bool ResnetBlock2DImpl::frozen() const {
  for (const auto& p : parameters())
    if (p.requires_grad()) return false;
  return true;
}

at::Tensor ResnetBlock2DImpl::forward(const at::Tensor& x, const at::Tensor& temb) {
  if (at::GradMode::is_enabled() && x.requires_grad() && !(temb.defined() && temb.requires_grad()) && frozen())
    return frozen_resnet_forward(*this, x, temb);
  return forward_plain(x, temb);
}

at::Tensor ResnetBlock2DImpl::forward_plain(const at::Tensor& x, const at::Tensor& temb, at::Tensor* h_out) {
  auto n1 = norm1->forward(x);
  check_finite(n1, "ResnetBlock2D.norm1 (GroupNorm)");
  auto h = conv1->forward(at::silu(n1));
  check_finite(h, "ResnetBlock2D.conv1");
  if (time_emb_proj && temb.defined()) h = h + time_emb_proj->forward(at::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  if (h_out) *h_out = h;
  auto n2 = norm2->forward(h);
  check_finite(n2, "ResnetBlock2D.norm2 (GroupNorm)");
  h = conv2->forward(at::silu(n2));  // dropout is identity at inference
  check_finite(h, "ResnetBlock2D.conv2");
  auto skip = conv_shortcut ? conv_shortcut->forward(x) : x;
  auto out = skip + h;
  return scale_ == 1.0 ? out : out / scale_;
}

Downsample2DImpl::Downsample2DImpl(int64_t channels, int64_t out_channels, int64_t padding) : padding_(padding) {
  conv = register_module("conv", tnn::Conv2d(tnn::Conv2dOptions(channels, out_channels, 3).stride(2).padding(padding)));
}

at::Tensor Downsample2DImpl::forward(const at::Tensor& x) {
  if (padding_ == 0) return conv->forward(F::pad(x, F::PadFuncOptions({0, 1, 0, 1})));
  return conv->forward(x);
}

Upsample2DImpl::Upsample2DImpl(int64_t channels, int64_t out_channels) {
  conv = register_module("conv", tnn::Conv2d(tnn::Conv2dOptions(channels, out_channels, 3).padding(1)));
}

at::Tensor Upsample2DImpl::forward(const at::Tensor& x, c10::optional<std::vector<int64_t>> size) {
  auto opts = F::InterpolateFuncOptions().mode(torch::kNearest);
  if (size) opts.size(*size);
  else opts.scale_factor(std::vector<double>{2.0, 2.0});
  auto u = F::interpolate(x, opts);
  check_finite(u, "Upsample2D.interpolate");
  auto y = conv->forward(u);
  check_finite(y, "Upsample2D.conv");
  return y;
}

}  // namespace hallo::nn
