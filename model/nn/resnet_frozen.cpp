#include "model/nn/resnet_frozen.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstdint>
#include <utility>
#include <vector>

#include "model/nn/autocast.h"
#include "model/nn/resnet.h"

namespace hallo::nn {

namespace {

std::vector<int64_t> padding_of(const torch::nn::Conv2d& c) {
  // padding is a c10::variant in 1.13 and a std::variant since 2.2: argument-dependent
  // lookup picks the right get.
  using std::get;
  const auto& p = get<torch::ExpandingArray<2>>(c->options.padding());
  return {(*p)[0], (*p)[1]};
}

// d(input) of conv `c` given d(output): the call autograd's ConvolutionBackward0 makes,
// in the dtype the forward's conv computed in (autocast casts input and weight to it),
// returned in the input's dtype.
at::Tensor conv_input_grad(const torch::nn::Conv2d& c, const at::Tensor& grad, const at::Tensor& input,
                           const AutocastState& ac) {
  const auto& o = c->options;
  const std::vector<int64_t> bias_sizes{o.out_channels()};
  const c10::ScalarType dt = ac.compute_dtype(input.scalar_type());
  const at::Tensor dx = std::get<0>(at::convolution_backward(grad.to(dt), input.to(dt), c->weight.to(dt), bias_sizes,
                                                             *o.stride(), padding_of(c), *o.dilation(),
                                                             /*transposed=*/false, {0, 0}, o.groups(),
                                                             {true, false, false}));
  return dx.to(input.scalar_type());
}

// silu(norm(t)) with a graph from a fresh leaf, for the backward of the normalisation;
// recomputed under the forward's autocast state (GroupNorm's dtype policy).
std::pair<at::Tensor, at::Tensor> norm_silu(torch::nn::GroupNorm& norm, const at::Tensor& t, const AutocastState& ac) {
  at::Tensor leaf = t.detach().requires_grad_();
  AutocastGuard guard(ac);
  return {leaf, at::silu(norm->forward(leaf))};
}

AutocastState state_of(const torch::autograd::AutogradContext* ctx) {
  AutocastState s;
  s.device = static_cast<c10::DeviceType>(ctx->saved_data.at("ac_device").toInt());
  s.enabled = ctx->saved_data.at("ac_enabled").toBool();
  s.dtype = static_cast<c10::ScalarType>(ctx->saved_data.at("ac_dtype").toInt());
  return s;
}

struct FrozenResnet : torch::autograd::Function<FrozenResnet> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& temb, int64_t block) {
    auto& r = *reinterpret_cast<ResnetBlock2DImpl*>(block);
    at::Tensor h;  // grad mode is off here: the plain forward records nothing
    at::Tensor out = r.forward_plain(x, temb, &h);
    ctx->save_for_backward({x, h});
    ctx->saved_data["block"] = block;
    const AutocastState ac = autocast_state(x.device().type());
    ctx->saved_data["ac_device"] = static_cast<int64_t>(ac.device);
    ctx->saved_data["ac_enabled"] = ac.enabled;
    ctx->saved_data["ac_dtype"] = static_cast<int64_t>(ac.dtype);
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto& r = *reinterpret_cast<ResnetBlock2DImpl*>(ctx->saved_data["block"].toInt());
    const auto saved = ctx->get_saved_variables();
    const at::Tensor x = saved[0].detach(), h = saved[1].detach();
    const at::Tensor g = r.output_scale() == 1.0 ? grad[0] : grad[0] / r.output_scale();
    const AutocastState ac = state_of(ctx);
    torch::AutoGradMode on(true);
    auto [h_leaf, a2] = norm_silu(r.norm2, h, ac);
    const at::Tensor da2 = conv_input_grad(r.conv2, g, a2.detach(), ac);
    const at::Tensor dh = torch::autograd::grad({a2}, {h_leaf}, {da2})[0];
    auto [x_leaf, a1] = norm_silu(r.norm1, x, ac);
    const at::Tensor da1 = conv_input_grad(r.conv1, dh, a1.detach(), ac);
    at::Tensor dx = torch::autograd::grad({a1}, {x_leaf}, {da1})[0];
    dx = dx + (r.conv_shortcut ? conv_input_grad(r.conv_shortcut, g, x, ac) : g);
    return {dx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor frozen_resnet_forward(ResnetBlock2DImpl& block, const at::Tensor& x, const at::Tensor& temb) {
  return FrozenResnet::apply(x, temb, reinterpret_cast<int64_t>(&block))[0];
}

}  // namespace hallo::nn
