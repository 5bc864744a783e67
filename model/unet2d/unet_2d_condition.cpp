#include "model/unet2d/unet_2d_condition.h"

#include <ATen/ATen.h>

namespace hallo::model {

namespace tnn = torch::nn;

UNet2DConditionModelImpl::UNet2DConditionModelImpl(const UNet2DConfig& c) : cfg_(c) {
  cfg_.validate("UNet2DConfig");
  const auto& ch = c.block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size()), temb = c.time_embed_dim();
  conv_in = register_module("conv_in", tnn::Conv2d(tnn::Conv2dOptions(c.in_channels, ch[0], 3).padding(1)));
  time_embedding = register_module("time_embedding", nn::TimestepEmbedding(ch[0], temb));

  BlockOptions base;
  base.temb_channels = temb;
  base.groups = c.norm_num_groups;
  base.eps = c.norm_eps;
  base.cross_attention_dim = c.cross_attention_dim;
  base.transformer_layers = c.transformer_layers_per_block;
  base.use_linear_projection = c.use_linear_projection;
  base.downsample_padding = c.downsample_padding;

  down_blocks = register_module("down_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < n; ++i) {
    BlockOptions o = base;
    apply_plan(o, c.down_block(i));
    downs.push_back(DownBlock2D(o));
    down_blocks->push_back(downs.back());
  }

  BlockOptions m = base;
  m.in_channels = ch.back();
  m.layers = 1;
  m.heads = c.num_attention_heads.back();
  m.output_scale_factor = c.mid_block_scale_factor;
  mid_block = register_module("mid_block", MidBlock2DCrossAttn(m));

  up_blocks = register_module("up_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < n; ++i) {
    BlockOptions o = base;
    apply_plan(o, c.up_block(i));
    ups.push_back(UpBlock2D(o));
    up_blocks->push_back(ups.back());
  }
  if (!c.reference_net) {
    conv_norm_out = register_module("conv_norm_out", tnn::GroupNorm(tnn::GroupNormOptions(c.norm_num_groups, ch[0]).eps(c.norm_eps)));
    conv_out = register_module("conv_out", tnn::Conv2d(tnn::Conv2dOptions(ch[0], c.out_channels, 3).padding(1)));
  }
  // Give every transformer block its path: bank entries and pairing are keyed by it.
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (auto* blk = dynamic_cast<nn::BasicTransformerBlockImpl*>(item.value().get())) {
      blk->path = item.key();
      tblocks_.push_back(nn::BasicTransformerBlock(std::dynamic_pointer_cast<nn::BasicTransformerBlockImpl>(item.value())));
    }
  }
}

std::vector<BlockInfo> UNet2DConditionModelImpl::transformer_blocks() const {
  std::vector<BlockInfo> out;
  for (const auto& b : tblocks_) out.push_back({b->path, b->norm1->options.normalized_shape()[0]});
  return out;
}

at::Tensor UNet2DConditionModelImpl::time_embed(const at::Tensor& timestep, int64_t batch, c10::ScalarType dtype) {
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  // Timesteps may come as CPU tensors (the schedulers' tables) for a net on a GPU.
  t = t.to(time_embedding->linear_1->weight.device()).expand({batch});
  auto f = nn::timestep_sinusoid(t, cfg_.block_out_channels[0], cfg_.flip_sin_to_cos, cfg_.freq_shift);
  return time_embedding->forward(f.to(dtype));
}

at::Tensor UNet2DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                             const at::Tensor& context, Hooks* hooks, ReferenceBank* write_bank) {
  auto record = [&](const std::string& k, const at::Tensor& v) {
    if (hooks) (*hooks)[k] = v;
  };
  const at::Tensor emb = time_embed(timestep, sample.size(0), sample.scalar_type());  // [B, 4*C0]
  record("time_embedding", emb);
  at::Tensor x = conv_in->forward(sample);  // [B, C0, H, W]
  record("conv_in", x);
  std::vector<at::Tensor> skips{x};
  for (size_t i = 0; i < downs.size(); ++i) {
    x = downs[i]->forward(x, emb, context, skips, write_bank);
    record("down_blocks." + std::to_string(i), x);
  }
  x = mid_block->forward(x, emb, context, write_bank);
  record("mid_block", x);
  for (size_t i = 0; i < ups.size(); ++i) {
    // Upsample to the next skip's size so odd latent sizes line up (diffusers' upsample_size).
    c10::optional<std::vector<int64_t>> size;
    const size_t consumed = ups[i]->res.size();
    if (ups[i]->up && skips.size() > consumed) {
      const auto& next = skips[skips.size() - consumed - 1];
      size = std::vector<int64_t>{next.size(2), next.size(3)};
    }
    x = ups[i]->forward(x, skips, emb, context, size, write_bank);
    record("up_blocks." + std::to_string(i), x);
  }
  if (cfg_.reference_net) return x;  // [B, C0, H, W] features for the bank's consumer
  x = conv_norm_out->forward(x);
  record("conv_norm_out", x);
  x = conv_out->forward(at::silu(x));
  record("conv_out", x);
  return x;
}

}  // namespace hallo::model
