#include "model/hallo/unet_3d.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "core/error.h"

namespace hallo::model {

namespace tnn = torch::nn;

namespace {

bool contains(const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

UNet3DConditionModelImpl::UNet3DConditionModelImpl(const UNet3DConfig& c) : cfg_(c) {
  cfg_.validate("UNet3DConfig");
  const auto& b2 = c.base;
  const auto& ch = b2.block_out_channels;
  const int64_t n = static_cast<int64_t>(ch.size()), temb = b2.time_embed_dim();
  conv_in = register_module("conv_in", tnn::Conv2d(tnn::Conv2dOptions(b2.in_channels, ch[0], 3).padding(1)));
  time_embedding = register_module("time_embedding", nn::TimestepEmbedding(ch[0], temb));

  Block3DOptions base;
  base.temb_channels = temb;
  base.groups = b2.norm_num_groups;
  base.eps = b2.norm_eps;
  base.cross_attention_dim = b2.cross_attention_dim;
  base.use_linear_projection = b2.use_linear_projection;
  base.downsample_padding = b2.downsample_padding;
  base.audio = c.use_audio_module;
  base.audio_dim = c.audio_attention_dim;
  base.motion_cfg = c.motion;

  down_blocks = register_module("down_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < n; ++i) {
    Block3DOptions o = base;
    o.path = "down_blocks." + std::to_string(i);
    apply_plan(o, b2.down_block(i));
    o.depth = i;
    o.audio_stacked = c.stack_enabled("down", i);
    o.motion = c.use_motion_module && contains(c.motion_module_resolutions, int64_t{1} << i) &&
               !c.motion_module_decoder_only;
    downs.push_back(DownBlock3D(o));
    down_blocks->push_back(downs.back());
  }

  Block3DOptions m = base;
  m.path = "mid_block";
  m.in_channels = ch.back();
  m.layers = 1;
  m.heads = b2.num_attention_heads.back();
  m.output_scale_factor = b2.mid_block_scale_factor;
  m.depth = 3;  // upstream hard-codes the mid block's mask level
  m.audio_stacked = c.stack_enabled("mid", 3);
  m.motion = c.use_motion_module && c.motion_module_mid_block;
  mid_block = register_module("mid_block", MidBlock3DCrossAttn(m));

  up_blocks = register_module("up_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < n; ++i) {
    Block3DOptions o = base;
    o.path = "up_blocks." + std::to_string(i);
    apply_plan(o, b2.up_block(i));
    o.depth = n - 1 - i;
    o.audio_stacked = c.stack_enabled("up", o.depth);
    o.motion = c.use_motion_module && contains(c.motion_module_resolutions, int64_t{1} << (n - 1 - i));
    ups.push_back(UpBlock3D(o));
    up_blocks->push_back(ups.back());
  }
  conv_norm_out = register_module("conv_norm_out", tnn::GroupNorm(tnn::GroupNormOptions(b2.norm_num_groups, ch[0]).eps(b2.norm_eps)));
  conv_out = register_module("conv_out", tnn::Conv2d(tnn::Conv2dOptions(ch[0], b2.out_channels, 3).padding(1)));

  // Spatial transformer blocks get their paths: the bank is keyed by them.
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (auto* blk = dynamic_cast<nn::BasicTransformerBlockImpl*>(item.value().get())) {
      blk->path = item.key();
      tblocks_.push_back(nn::BasicTransformerBlock(std::dynamic_pointer_cast<nn::BasicTransformerBlockImpl>(item.value())));
    }
  }
}

std::vector<BlockInfo> UNet3DConditionModelImpl::transformer_blocks() const {
  std::vector<BlockInfo> out;
  for (const auto& b : tblocks_) out.push_back({b->path, b->norm1->options.normalized_shape()[0]});
  return out;
}

at::Tensor UNet3DConditionModelImpl::forward(const at::Tensor& sample, const at::Tensor& timestep,
                                             const at::Tensor& context, const at::Tensor& face_locator_feature,
                                             const AudioMasks& masks, const at::Tensor& audio,
                                             const at::Tensor& motion_scale, const ReferenceBank* bank, Hooks* hooks,
                                             int64_t uncond_samples) {
  if (sample.dim() != 5) fail_at("UNet3DConditionModel", "sample must be [B, C, F, H, W], got {}", c10::str(sample.sizes()));
  const int64_t b = sample.size(0), f = sample.size(2), h = sample.size(3), w = sample.size(4);
  const auto& b2 = cfg_.base;
  if (!cfg_.use_inflated_groupnorm && f != 1)
    fail_at("UNet3DConditionModel", "use_inflated_groupnorm = false (upstream's stage-1 UNet) supports single frames only, got {}", f);
  if (audio.defined() && (audio.dim() != 4 || audio.size(0) != b || audio.size(1) != f))
    fail_at("UNet3DConditionModel", "audio embedding must be [{}, {}, T, D], got {}", b, f, c10::str(audio.sizes()));

  // Time embedding: [B, T] -> per folded frame [B*F, T].
  auto t = timestep.dim() == 0 ? timestep.reshape({1}) : timestep;
  t = t.to(sample.device());  // the schedulers' timesteps are CPU tensors
  auto tf = nn::timestep_sinusoid(t.expand({b}), b2.block_out_channels[0], b2.flip_sin_to_cos, b2.freq_shift);
  const at::Tensor emb = time_embedding->forward(tf.to(sample.scalar_type()));
  if (hooks) (*hooks)["time_embedding"] = emb;

  UNet3DStep s;
  s.frames = f;
  s.temb = emb.repeat_interleave(f, 0);
  s.context = context;
  s.audio = audio;
  s.masks = &masks;
  s.motion_scale = motion_scale;
  s.read = ReadOptions{bank, cfg_.bank_dtype, uncond_samples, cfg_.tile_reference_rows};
  s.skip_motion_in_plain_blocks = cfg_.skip_motion_in_plain_blocks;
  s.zero_motion_frames = cfg_.zero_motion_frames;
  s.checkpoint = is_training() ? checkpoint_ : nn::CheckpointPolicy{};
  s.hooks = hooks;

  auto x = conv_in->forward(sample.permute({0, 2, 1, 3, 4}).reshape({b * f, sample.size(1), h, w}));  // [B*F, C0, H, W]
  s.record("conv_in", x);  // the hook is conv_in's own output, before the face-locator feature
  if (face_locator_feature.defined())
    x = x + face_locator_feature.permute({0, 2, 1, 3, 4}).reshape({b * f, x.size(1), h, w});
  std::vector<at::Tensor> skips{x};
  const nn::CheckpointPolicy policy = s.checkpoint;
  for (size_t i = 0; i < downs.size(); ++i) {
    s.checkpoint = policy.for_block("down_blocks." + std::to_string(i));
    x = downs[i]->forward(x, s, skips);
    s.record("down_blocks." + std::to_string(i), x);
  }
  x = mid_block->forward(x, s);
  s.record("mid_block", x);
  for (size_t i = 0; i < ups.size(); ++i) {
    c10::optional<std::vector<int64_t>> size;
    const size_t consumed = ups[i]->res.size();
    if (ups[i]->up && skips.size() > consumed) {
      const auto& next = skips[skips.size() - consumed - 1];
      size = std::vector<int64_t>{next.size(2), next.size(3)};
    }
    s.checkpoint = policy.for_block("up_blocks." + std::to_string(i));
    x = ups[i]->forward(x, skips, s, size);
    s.record("up_blocks." + std::to_string(i), x);
  }
  x = conv_norm_out->forward(x);
  s.record("conv_norm_out", x);
  x = conv_out->forward(at::silu(x));
  s.record("conv_out", x);
  return x.view({b, f, x.size(1), h, w}).permute({0, 2, 1, 3, 4}).contiguous();  // [B, Cout, F, H, W]
}

}  // namespace hallo::model
