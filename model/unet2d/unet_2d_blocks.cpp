#include "model/unet2d/unet_2d_blocks.h"

#include <ATen/ATen.h>

namespace hallo::model {

namespace {

nn::ResnetBlock2D make_resnet(const BlockOptions& o, int64_t in, int64_t out) {
  return nn::ResnetBlock2D(nn::ResnetOptions{in, out, o.temb_channels, o.groups, o.eps, o.output_scale_factor});
}

nn::Transformer2DModel make_transformer(const BlockOptions& o, int64_t channels) {
  return nn::Transformer2DModel(nn::Transformer2DOptions{channels, o.heads, channels / o.heads, o.transformer_layers,
                                                         o.cross_attention_dim, o.groups, o.use_linear_projection});
}

}  // namespace

DownBlock2DImpl::DownBlock2DImpl(const BlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    res.push_back(make_resnet(o, i == 0 ? o.in_channels : o.out_channels, o.out_channels));
    resnets->push_back(res.back());
    if (o.cross_attention) {
      attn.push_back(make_transformer(o, o.out_channels));
      attentions->push_back(attn.back());
    }
  }
  if (o.resample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down = nn::Downsample2D(o.out_channels, o.out_channels, o.downsample_padding);
    downsamplers->push_back(down);
  }
}

at::Tensor DownBlock2DImpl::forward(at::Tensor x, const at::Tensor& temb, const at::Tensor& context,
                                    std::vector<at::Tensor>& skips, ReferenceBank* bank) {
  for (size_t i = 0; i < res.size(); ++i) {
    x = res[i]->forward(x, temb);
    if (!attn.empty()) x = attn[i]->forward(x, context, bank);
    skips.push_back(x);
  }
  if (down) {
    x = down->forward(x);
    skips.push_back(x);
  }
  return x;
}

MidBlock2DCrossAttnImpl::MidBlock2DCrossAttnImpl(const BlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  res.push_back(make_resnet(o, o.in_channels, o.in_channels));
  resnets->push_back(res.back());
  for (int64_t i = 0; i < o.layers; ++i) {
    attn.push_back(make_transformer(o, o.in_channels));
    attentions->push_back(attn.back());
    res.push_back(make_resnet(o, o.in_channels, o.in_channels));
    resnets->push_back(res.back());
  }
}

at::Tensor MidBlock2DCrossAttnImpl::forward(at::Tensor x, const at::Tensor& temb, const at::Tensor& context,
                                            ReferenceBank* bank) {
  x = res[0]->forward(x, temb);
  for (size_t i = 0; i < attn.size(); ++i) {
    x = attn[i]->forward(x, context, bank);
    x = res[i + 1]->forward(x, temb);
  }
  return x;
}

UpBlock2DImpl::UpBlock2DImpl(const BlockOptions& o) {
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    // Skip channels: the last resnet takes the skip from the block's input level.
    const int64_t skip = (i == o.layers - 1) ? o.in_channels : o.out_channels;
    const int64_t in = (i == 0) ? o.prev_output_channels : o.out_channels;
    res.push_back(make_resnet(o, in + skip, o.out_channels));
    resnets->push_back(res.back());
    if (o.cross_attention) {
      attn.push_back(make_transformer(o, o.out_channels));
      attentions->push_back(attn.back());
    }
  }
  if (o.resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up = nn::Upsample2D(o.out_channels, o.out_channels);
    upsamplers->push_back(up);
  }
}

at::Tensor UpBlock2DImpl::forward(at::Tensor x, std::vector<at::Tensor>& skips, const at::Tensor& temb,
                                  const at::Tensor& context, c10::optional<std::vector<int64_t>> up_size,
                                  ReferenceBank* bank) {
  for (size_t i = 0; i < res.size(); ++i) {
    at::Tensor skip = std::move(skips.back());
    skips.pop_back();
    x = res[i]->forward(at::cat({x, skip}, 1), temb);
    if (!attn.empty()) x = attn[i]->forward(x, context, bank);
  }
  if (up) x = up->forward(x, up_size);
  return x;
}

}  // namespace hallo::model
