#include "model/hallo/audio_attention.h"

#include <ATen/ATen.h>

#include "core/error.h"

namespace hallo::model {

namespace tnn = torch::nn;

namespace {

tnn::Conv2d conv1x1(int64_t in, int64_t out) { return tnn::Conv2d(tnn::Conv2dOptions(in, out, 1)); }

const at::Tensor& mask_at(const std::vector<at::Tensor>& m, int64_t level, const char* name) {
  if (level >= static_cast<int64_t>(m.size()) || !m[level].defined())
    fail_at("UNet3D audio module", "{}_mask has no level {} (got {} levels)", name, level, m.size());
  return m[level];
}

}  // namespace

AudioTemporalBasicTransformerBlockImpl::AudioTemporalBasicTransformerBlockImpl(const AudioBlockOptions& o)
    : level_(o.level) {
  const auto ln = [&] { return tnn::LayerNorm(tnn::LayerNormOptions({o.dim}).eps(1e-5)); };
  zero_conv_full = register_module("zero_conv_full", conv1x1(o.dim, o.dim));
  zero_conv_face = register_module("zero_conv_face", conv1x1(o.dim, o.dim));
  zero_conv_lip = register_module("zero_conv_lip", conv1x1(o.dim, o.dim));
  attn1 = register_module("attn1", nn::Attention(nn::AttentionOptions{o.dim, 0, o.heads, o.dim_head}));
  norm1 = register_module("norm1", ln());
  const nn::AttentionOptions cross{o.dim, o.audio_dim, o.heads, o.dim_head};
  if (o.stacked) {
    attn2_0 = register_module("attn2_0", nn::Attention(cross));
    attn2_1 = register_module("attn2_1", nn::Attention(cross));
    attn2_2 = register_module("attn2_2", nn::Attention(cross));
  } else {
    attn2 = register_module("attn2", nn::Attention(cross));
  }
  norm2 = register_module("norm2", ln());
  ff = register_module("ff", nn::FeedForward(o.dim));
  norm3 = register_module("norm3", ln());
}

at::Tensor AudioTemporalBasicTransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& audio,
                                                           const AudioMasks& masks, const at::Tensor& motion_scale,
                                                           int64_t h, int64_t w) {
  at::Tensor hs = attn1->forward(norm1->forward(x)) + x;  // [B*F, HW, C]
  auto n = norm2->forward(hs);
  if (attn2) {
    hs = attn2->forward(n, audio) + hs;
  } else {
    const int64_t bf = hs.size(0), c = hs.size(2);
    // One gated branch: attention * mask -> [B*F, C, H, W] -> 1x1 conv -> [B*F, HW, C]
    auto branch = [&](nn::Attention& a, const at::Tensor& mask, tnn::Conv2d& conv) {
      auto t = a->forward(n, audio) * mask.to(n.scalar_type()).unsqueeze(-1);
      t = t.view({bf, h, w, c}).permute({0, 3, 1, 2});
      return conv->forward(t).permute({0, 2, 3, 1}).reshape({bf, h * w, c});
    };
    auto full = branch(attn2_0, mask_at(masks.full, level_, "full"), zero_conv_full);
    auto face = branch(attn2_1, mask_at(masks.face, level_, "face"), zero_conv_face);
    auto lip = branch(attn2_2, mask_at(masks.lip, level_, "lip"), zero_conv_lip);
    if (motion_scale.defined()) {
      auto s = motion_scale.to(hs.scalar_type());
      hs = s[0] * full + s[1] * face + s[2] * lip + hs;
    } else {
      hs = full + face + lip + hs;
    }
  }
  return ff->forward(norm3->forward(hs)) + hs;
}

AudioTransformer3DModelImpl::AudioTransformer3DModelImpl(const AudioTransformerOptions& o) {
  const int64_t dim_head = o.input_channels / o.heads, inner = o.heads * dim_head;
  norm = register_module("norm", tnn::GroupNorm(tnn::GroupNormOptions(o.groups, o.channels).eps(1e-6)));
  proj_in = register_module("proj_in", conv1x1(o.channels, inner));
  transformer_blocks = register_module("transformer_blocks", tnn::ModuleList());
  blocks.push_back(AudioTemporalBasicTransformerBlock(
      AudioBlockOptions{inner, o.heads, dim_head, o.audio_dim, o.stacked, o.level}));
  transformer_blocks->push_back(blocks.back());
  proj_out = register_module("proj_out", conv1x1(inner, o.channels));
}

at::Tensor AudioTransformer3DModelImpl::forward(const at::Tensor& x, const at::Tensor& audio, const AudioMasks& masks,
                                                const at::Tensor& motion_scale) {
  const int64_t bf = x.size(0), h = x.size(2), w = x.size(3);
  const auto a = audio.reshape({bf, audio.size(-2), audio.size(-1)});  // (b f) t d
  auto t = proj_in->forward(norm->forward(x));
  const int64_t inner = t.size(1);
  t = t.permute({0, 2, 3, 1}).reshape({bf, h * w, inner});  // [B*F, HW, inner]
  for (auto& blk : blocks) t = blk->forward(t, a, masks, motion_scale, h, w);
  t = t.view({bf, h, w, inner}).permute({0, 3, 1, 2}).contiguous();
  return proj_out->forward(t) + x;
}

}  // namespace hallo::model
