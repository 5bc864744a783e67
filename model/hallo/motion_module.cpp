#include "model/hallo/motion_module.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace hallo::model {

namespace tnn = torch::nn;

PositionalEncodingImpl::PositionalEncodingImpl(int64_t dim, int64_t max_len) {
  auto pos = at::arange(max_len, at::kFloat).unsqueeze(1);  // [max_len, 1]
  auto div = at::exp(at::arange(0, dim, 2, at::kFloat) * (-std::log(10000.0) / static_cast<double>(dim)));
  auto table = at::zeros({1, max_len, dim});
  table.index_put_({0, at::indexing::Slice(), at::indexing::Slice(0, at::indexing::None, 2)}, at::sin(pos * div));
  table.index_put_({0, at::indexing::Slice(), at::indexing::Slice(1, at::indexing::None, 2)},
                   at::cos(pos * div).narrow(1, 0, dim / 2));
  pe = register_buffer("pe", table);
}

at::Tensor PositionalEncodingImpl::forward(const at::Tensor& x) {
  const int64_t f = x.size(1);
  if (f > pe.size(1))
    fail_at("motion module", "{} frames (motion frames included) exceed temporal_position_encoding_max_len {}", f,
            pe.size(1));
  return x + pe.narrow(1, 0, f).to(x.scalar_type());
}

VersatileAttentionImpl::VersatileAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head, bool pos_encoding,
                                               int64_t max_len)
    : nn::AttentionImpl(nn::AttentionOptions{dim, 0, heads, dim_head}) {
  if (pos_encoding) pos_encoder = register_module("pos_encoder", PositionalEncoding(dim, max_len));
}

at::Tensor VersatileAttentionImpl::forward_temporal(const at::Tensor& x, int64_t frames) {
  const int64_t bf = x.size(0), l = x.size(1), c = x.size(2), b = bf / frames;
  // (b f) l c -> (b l) f c
  auto t = x.view({b, frames, l, c}).permute({0, 2, 1, 3}).reshape({b * l, frames, c});
  t = forward_sequences(t);
  return t.view({b, l, frames, c}).permute({0, 2, 1, 3}).reshape({bf, l, c});
}

at::Tensor VersatileAttentionImpl::forward_sequences(const at::Tensor& x) {
  const at::Tensor t = pos_encoder ? pos_encoder->forward(x) : x;
  return forward(t);  // self-attention over frames
}

TemporalTransformerBlockImpl::TemporalTransformerBlockImpl(int64_t dim, const MotionModuleConfig& c) {
  attention_blocks = register_module("attention_blocks", tnn::ModuleList());
  norms = register_module("norms", tnn::ModuleList());
  const int64_t dim_head = dim / c.num_attention_heads;
  for (size_t i = 0; i < c.attention_block_types.size(); ++i) {
    attn.push_back(VersatileAttention(dim, c.num_attention_heads, dim_head, c.temporal_position_encoding,
                                      c.temporal_position_encoding_max_len));
    attention_blocks->push_back(attn.back());
    norm.push_back(tnn::LayerNorm(tnn::LayerNormOptions({dim}).eps(1e-5)));
    norms->push_back(norm.back());
  }
  ff = register_module("ff", nn::FeedForward(dim));
  ff_norm = register_module("ff_norm", tnn::LayerNorm(tnn::LayerNormOptions({dim}).eps(1e-5)));
}

at::Tensor TemporalTransformerBlockImpl::forward(const at::Tensor& x, int64_t frames) {
  at::Tensor h = x;
  for (size_t i = 0; i < attn.size(); ++i) h = attn[i]->forward_temporal(norm[i]->forward(h), frames) + h;
  return ff->forward(ff_norm->forward(h)) + h;
}

at::Tensor TemporalTransformerBlockImpl::forward_sequences(const at::Tensor& x) {
  // LayerNorm, the FF and the projections act per token, so the whole block can run
  // in the [B*L, F, C] layout the temporal attention needs: no per-attention permutes.
  at::Tensor h = x;
  for (size_t i = 0; i < attn.size(); ++i) h = attn[i]->forward_sequences(norm[i]->forward(h)) + h;
  return ff->forward(ff_norm->forward(h)) + h;
}

TemporalTransformer3DModelImpl::TemporalTransformer3DModelImpl(int64_t channels, const MotionModuleConfig& c) {
  const int64_t inner = c.num_attention_heads * (channels / c.num_attention_heads / c.temporal_attention_dim_div);
  norm = register_module("norm", tnn::GroupNorm(tnn::GroupNormOptions(c.norm_num_groups, channels).eps(1e-6)));
  proj_in = register_module("proj_in", tnn::Linear(channels, inner));
  transformer_blocks = register_module("transformer_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < c.num_transformer_block; ++i) {
    blocks.push_back(TemporalTransformerBlock(inner, c));
    transformer_blocks->push_back(blocks.back());
  }
  proj_out = register_module("proj_out", tnn::Linear(inner, channels));
}

at::Tensor TemporalTransformer3DModelImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), f = x.size(2), h = x.size(3), w = x.size(4);
  auto folded = x.permute({0, 2, 1, 3, 4}).reshape({b * f, c, h, w});  // [B*F, C, H, W]
  // One permute into sequences over frames, one back: [B*F, C, H, W] -> [B*HW, F, C].
  auto t = norm->forward(folded).view({b, f, c, h * w}).permute({0, 3, 1, 2}).reshape({b * h * w, f, c});
  t = proj_in->forward(t);  // [B*HW, F, inner]
  for (auto& blk : blocks) t = blk->forward_sequences(t);
  t = proj_out->forward(t);                                  // [B*HW, F, C]
  t = t.view({b, h, w, f, c}).permute({0, 4, 3, 1, 2});       // [B, C, F, H, W]
  return t + x;
}

VanillaTemporalModuleImpl::VanillaTemporalModuleImpl(int64_t channels, const MotionModuleConfig& c) {
  temporal_transformer = register_module("temporal_transformer", TemporalTransformer3DModel(channels, c));
}

}  // namespace hallo::model
