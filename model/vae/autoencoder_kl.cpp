#include "model/vae/autoencoder_kl.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <array>
#include <utility>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

namespace tnn = torch::nn;

VaeConfig VaeConfig::sd_vae_ft_mse() { return VaeConfig{}; }

VaeConfig VaeConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  VaeConfig c;
  c.in_channels = f.get_or<int64_t>("in_channels", c.in_channels);
  c.out_channels = f.get_or<int64_t>("out_channels", c.out_channels);
  c.latent_channels = f.get_or<int64_t>("latent_channels", c.latent_channels);
  c.block_out_channels = f.get_or<std::vector<int64_t>>("block_out_channels", c.block_out_channels);
  c.layers_per_block = f.get_or<int64_t>("layers_per_block", c.layers_per_block);
  c.norm_num_groups = f.get_or<int64_t>("norm_num_groups", c.norm_num_groups);
  c.scaling_factor = f.get_or<double>("scaling_factor", c.scaling_factor);
  if (f.has("act_fn") && f.get<std::string>("act_fn") != "silu") fail_at(where, "unsupported act_fn '{}'", f.get<std::string>("act_fn"));
  for (const auto& t : f.get_or<std::vector<std::string>>("down_block_types", {}))
    if (t != "DownEncoderBlock2D") fail_at(where, "unsupported down block type '{}'", t);
  for (const auto& t : f.get_or<std::vector<std::string>>("up_block_types", {}))
    if (t != "UpDecoderBlock2D") fail_at(where, "unsupported up block type '{}'", t);
  if (c.block_out_channels.empty()) fail_at(where, "block_out_channels is empty");
  for (auto ch : c.block_out_channels)
    if (ch % c.norm_num_groups) fail_at(where, "block_out_channels entry {} not divisible by norm_num_groups {}", ch, c.norm_num_groups);
  return c;
}

at::Tensor DiagonalGaussian::std() const { return at::exp(0.5 * logvar); }

at::Tensor DiagonalGaussian::sample(c10::optional<at::Generator> gen) const {
  return mean + std() * at::randn(mean.sizes(), gen, mean.options());
}

namespace {
nn::ResnetBlock2D vae_resnet(int64_t in, int64_t out, int64_t groups) {
  return nn::ResnetBlock2D(nn::ResnetOptions{in, out, 0, groups, 1e-6, 1.0});
}
}  // namespace

VaeMidBlockImpl::VaeMidBlockImpl(int64_t ch, int64_t groups) {
  resnets = register_module("resnets", tnn::ModuleList());
  attentions = register_module("attentions", tnn::ModuleList());
  for (int i = 0; i < 2; ++i) {
    res_.push_back(vae_resnet(ch, ch, groups));
    resnets->push_back(res_.back());
  }
  // One head spanning all channels, with q/k/v biases and a GroupNorm in front.
  attn_ = nn::Attention(nn::AttentionOptions{ch, 0, 1, ch, true, groups, 1e-6});
  attentions->push_back(attn_);
}

at::Tensor VaeMidBlockImpl::forward(at::Tensor x) {
  x = res_[0]->forward(x);
  x = attn_->forward_spatial(x);
  return res_[1]->forward(x);
}

VaeBlockImpl::VaeBlockImpl(int64_t in, int64_t out, int64_t layers, int64_t groups, bool down, bool up) {
  resnets = register_module("resnets", tnn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) {
    res_.push_back(vae_resnet(i == 0 ? in : out, out, groups));
    resnets->push_back(res_.back());
  }
  if (down) {
    down_ = nn::Downsample2D(out, out, /*padding=*/0);
    downsamplers = register_module("downsamplers", tnn::ModuleList(down_));
  }
  if (up) {
    up_ = nn::Upsample2D(out, out);
    upsamplers = register_module("upsamplers", tnn::ModuleList(up_));
  }
}

at::Tensor VaeBlockImpl::forward(at::Tensor x) {
  for (auto& r : res_) x = r->forward(x);
  if (down_) x = down_->forward(x);
  if (up_) x = up_->forward(x);
  return x;
}

VaeCoderImpl::VaeCoderImpl(const VaeConfig& c, bool encoder) : encoder_(encoder) {
  const auto& ch = c.block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size()), g = c.norm_num_groups;
  if (encoder) {
    conv_in = register_module("conv_in", tnn::Conv2d(tnn::Conv2dOptions(c.in_channels, ch[0], 3).padding(1)));
    down_blocks = register_module("down_blocks", tnn::ModuleList());
    for (int64_t i = 0; i < n; ++i) {
      blocks_.push_back(VaeBlock(i == 0 ? ch[0] : ch[i - 1], ch[i], c.layers_per_block, g, i != n - 1, false));
      down_blocks->push_back(blocks_.back());
    }
    mid_block = register_module("mid_block", VaeMidBlock(ch.back(), g));
    conv_norm_out = register_module("conv_norm_out", tnn::GroupNorm(tnn::GroupNormOptions(g, ch.back()).eps(1e-6)));
    conv_out = register_module("conv_out", tnn::Conv2d(tnn::Conv2dOptions(ch.back(), 2 * c.latent_channels, 3).padding(1)));
  } else {
    conv_in = register_module("conv_in", tnn::Conv2d(tnn::Conv2dOptions(c.latent_channels, ch.back(), 3).padding(1)));
    mid_block = register_module("mid_block", VaeMidBlock(ch.back(), g));
    up_blocks = register_module("up_blocks", tnn::ModuleList());
    int64_t prev = ch.back();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t out = ch[n - 1 - i];
      blocks_.push_back(VaeBlock(prev, out, c.layers_per_block + 1, g, false, i != n - 1));
      up_blocks->push_back(blocks_.back());
      prev = out;
    }
    conv_norm_out = register_module("conv_norm_out", tnn::GroupNorm(tnn::GroupNormOptions(g, ch[0]).eps(1e-6)));
    conv_out = register_module("conv_out", tnn::Conv2d(tnn::Conv2dOptions(ch[0], c.out_channels, 3).padding(1)));
  }
}

at::Tensor VaeCoderImpl::forward(at::Tensor x) {
  x = conv_in->forward(x);
  if (encoder_) {
    for (auto& b : blocks_) x = b->forward(x);
    x = mid_block->forward(x);
  } else {
    x = mid_block->forward(x);
    for (auto& b : blocks_) x = b->forward(x);
  }
  return conv_out->forward(at::silu(conv_norm_out->forward(x)));
}

AutoencoderKLImpl::AutoencoderKLImpl(const VaeConfig& c) : cfg_(c) {
  encoder = register_module("encoder", VaeCoder(c, true));
  decoder = register_module("decoder", VaeCoder(c, false));
  quant_conv = register_module("quant_conv", tnn::Conv2d(tnn::Conv2dOptions(2 * c.latent_channels, 2 * c.latent_channels, 1)));
  post_quant_conv = register_module("post_quant_conv", tnn::Conv2d(tnn::Conv2dOptions(c.latent_channels, c.latent_channels, 1)));
}

DiagonalGaussian AutoencoderKLImpl::encode(const at::Tensor& image) {
  auto moments = quant_conv->forward(encoder->forward(image));  // [B, 2*latent, h, w]
  auto parts = moments.chunk(2, 1);
  return DiagonalGaussian{parts[0], at::clamp(parts[1], -30.0, 20.0)};
}

at::Tensor AutoencoderKLImpl::decode(const at::Tensor& z) {
  if (decoder_released_) fail("VAE decode: this VAE's decoder was released (a training run that only encodes)");
  return decoder->forward(post_quant_conv->forward(z));
}

void AutoencoderKLImpl::release_decoder() {
  for (torch::nn::Module* m : {static_cast<torch::nn::Module*>(decoder.get()), static_cast<torch::nn::Module*>(post_quant_conv.get())}) {
    for (auto& p : m->parameters()) p.set_data(at::empty({0}, p.options()));
    for (auto& b : m->buffers()) b.set_data(at::empty({0}, b.options()));
  }
  decoder_released_ = true;
}

std::string vae_translate_legacy_key(const std::string& key) {
  static const std::array<std::pair<const char*, const char*>, 4> kTable{{
      {".query.", ".to_q."}, {".key.", ".to_k."}, {".value.", ".to_v."}, {".proj_attn.", ".to_out.0."}}};
  if (key.find(".mid_block.attentions.") == std::string::npos) return key;
  for (const auto& [from, to] : kTable) {
    auto p = key.find(from);
    if (p != std::string::npos) return key.substr(0, p) + to + key.substr(p + std::string(from).size());
  }
  return key;
}

}  // namespace hallo::model
