#include "model/hallo/transformer_3d.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "core/error.h"

namespace hallo::model {

namespace tnn = torch::nn;

at::Tensor reference_read_block(nn::BasicTransformerBlockImpl& blk, const at::Tensor& x, const at::Tensor& context,
                                int64_t frames, const ReadOptions& ro, at::Tensor* motion) {
  auto n1 = blk.norm1->forward(x);  // [N, L, C], N = B*F
  at::Tensor h;
  if (ro.bank && ro.bank->contains(blk.path)) {
    const int64_t n = x.size(0), l = x.size(1), c = x.size(2), b = n / frames;
    const at::Tensor e = ro.bank->get(blk.path).to(ro.bank_dtype).to(x.scalar_type());  // [B*S, L, C]
    if (e.dim() != 3 || e.size(1) != l || e.size(2) != c || e.size(0) % b != 0)
      fail_at("reference bank", "entry '{}' has shape {}, expected [{}*S, {}, {}]", blk.path, c10::str(e.sizes()), b,
              l, c);
    const auto e4 = e.view({b, e.size(0) / b, l, c});
    // Quirk kept by default: the reference row is tiled with repeat over frames, so
    // row k of the [B*F] batch gets sample k % B (not its own CFG half / sample).
    // K/V of the reference rows are projected once per sample, then tiled (Linear
    // acts row-wise, so this equals projecting the tiled rows, F times cheaper).
    auto& a = *blk.attn1;
    // contiguous: libtorch 2.x's matmul folds a strided 3-D input into one mm only when
    // the weight requires grad (else a bmm, other rounding), so the bits would depend on
    // what is trainable. Contiguous rows always fold, as in 1.13.
    const auto ref = e4.select(1, 0).contiguous();  // [B, L, C]
    auto spread = [&](const at::Tensor& t) {  // [B, L, inner] -> [B*F, L, inner]
      return ro.tile_reference_rows ? t.repeat({frames, 1, 1}) : t.repeat_interleave(frames, 0);
    };
    const auto k_ref = spread(a.project(nn::Proj::k, ref));
    const auto v_ref = spread(a.project(nn::Proj::v, ref));
    auto read = [&](int64_t from, int64_t count) {  // reference attention for rows [from, from+count)
      const auto own = n1.narrow(0, from, count);
      const auto k = at::cat({a.project(nn::Proj::k, own), k_ref.narrow(0, from, count)}, 1);  // [count, 2L, inner]
      const auto v = at::cat({a.project(nn::Proj::v, own), v_ref.narrow(0, from, count)}, 1);
      return a.attend_projected(a.project(nn::Proj::q, own), k, v);
    };
    if (ro.uncond_samples > 0) {
      const int64_t plain = ro.uncond_samples * frames;  // rows are (b f): leading samples first
      auto uc = a.forward(n1.narrow(0, 0, plain));      // unconditional rows: plain self-attention
      h = at::cat({uc, read(plain, n - plain)}, 0) + x;
    } else {
      h = read(0, n) + x;
    }
    if (motion) *motion = e4.narrow(1, 1, e4.size(1) - 1);  // [B, S-1, L, C]
  } else {
    h = blk.attn1->forward(n1) + x;
  }
  h = blk.attn2->forward(blk.norm2->forward(h), context) + h;
  return blk.ff->forward(blk.norm3->forward(h)) + h;
}

Transformer3DModelImpl::Transformer3DModelImpl(const nn::Transformer2DOptions& o) : linear_(o.use_linear_projection) {
  const int64_t inner = o.heads * o.dim_head;
  norm = register_module("norm", tnn::GroupNorm(tnn::GroupNormOptions(o.norm_groups, o.in_channels).eps(1e-6)));
  if (linear_) proj_in = tnn::AnyModule(register_module("proj_in", tnn::Linear(o.in_channels, inner)));
  else proj_in = tnn::AnyModule(register_module("proj_in", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels, inner, 1))));
  transformer_blocks = register_module("transformer_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    blocks.push_back(nn::BasicTransformerBlock(nn::TransformerBlockOptions{inner, o.heads, o.dim_head, o.cross_attention_dim}));
    transformer_blocks->push_back(blocks.back());
  }
  if (linear_) proj_out = tnn::AnyModule(register_module("proj_out", tnn::Linear(inner, o.in_channels)));
  else proj_out = tnn::AnyModule(register_module("proj_out", tnn::Conv2d(tnn::Conv2dOptions(inner, o.in_channels, 1))));
}

at::Tensor Transformer3DModelImpl::bank_motion_frames(const ReadOptions& ro, int64_t batch, int64_t h,
                                                     int64_t w) const {
  if (!ro.bank || blocks.empty() || !ro.bank->contains(blocks.front()->path)) return {};
  const at::Tensor& raw = ro.bank->get(blocks.front()->path);  // [B*S, L, C]
  if (raw.dim() != 3 || raw.size(0) % batch != 0 || raw.size(1) != h * w)
    fail_at("reference bank", "entry '{}' has shape {}, expected [{}*S, {}, C]", blocks.front()->path,
            c10::str(raw.sizes()), batch, h * w);
  const int64_t s = raw.size(0) / batch, c = raw.size(2);
  const at::Tensor e = raw.to(ro.bank_dtype);  // the caller casts to the activations' dtype
  // b s (h w) c -> b c (s-1) h w
  return e.view({batch, s, h, w, c}).narrow(1, 1, s - 1).permute({0, 4, 1, 2, 3});
}

at::Tensor Transformer3DModelImpl::forward(const at::Tensor& x, const at::Tensor& context, int64_t frames,
                                           const ReadOptions& ro, at::Tensor* motion_frames) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3), b = n / frames;
  // b n c -> (b f) n c
  const auto ctx = context.size(0) == n ? context : context.repeat_interleave(frames, 0);
  auto t = norm->forward(x);
  if (linear_) {
    t = proj_in.forward(t.permute({0, 2, 3, 1}).reshape({n, h * w, -1}));
  } else {
    t = proj_in.forward(t);
    t = t.permute({0, 2, 3, 1}).reshape({n, h * w, -1});  // [B*F, HW, inner]
  }
  at::Tensor motion;
  for (size_t i = 0; i < blocks.size(); ++i)
    t = reference_read_block(*blocks[i], t, ctx, frames, ro, i == 0 ? &motion : nullptr);
  if (linear_) {
    t = proj_out.forward(t).reshape({n, h, w, -1}).permute({0, 3, 1, 2}).contiguous();
  } else {
    t = proj_out.forward(t.reshape({n, h, w, -1}).permute({0, 3, 1, 2}).contiguous());
  }
  if (motion_frames) {
    // b f (h w) c -> b c f h w
    if (motion.defined()) *motion_frames = motion.reshape({b, motion.size(1), h, w, -1}).permute({0, 4, 1, 2, 3});
    else *motion_frames = at::Tensor();
  }
  return t + x;
}

}  // namespace hallo::model
