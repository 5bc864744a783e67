#include "model/hallo/unet_3d_blocks.h"

#include <ATen/ATen.h>

namespace hallo::model {

namespace {

// (b f) c h w -> b c f h w
at::Tensor unfold_frames(const at::Tensor& x, int64_t frames) {
  return x.view({x.size(0) / frames, frames, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}
// b c f h w -> (b f) c h w
at::Tensor fold_frames(const at::Tensor& x) {
  return x.permute({0, 2, 1, 3, 4}).reshape({x.size(0) * x.size(2), x.size(1), x.size(3), x.size(4)});
}

nn::ResnetBlock2D make_resnet(const Block3DOptions& o, int64_t in, int64_t out) {
  return nn::ResnetBlock2D(nn::ResnetOptions{in, out, o.temb_channels, o.groups, o.eps, o.output_scale_factor});
}

}  // namespace

void UNet3DStep::record(const std::string& key, const at::Tensor& folded) const {
  if (hooks) (*hooks)[key] = unfold_frames(folded, frames).contiguous();
}

void Block3DBase::add_layer_modules(const Block3DOptions& o, int64_t channels, int64_t audio_input_channels) {
  if (o.cross_attention) {
    attn.push_back(Transformer3DModel(nn::Transformer2DOptions{channels, o.heads, channels / o.heads, 1,
                                                               o.cross_attention_dim, o.groups,
                                                               o.use_linear_projection}));
    attentions->push_back(attn.back());
    if (o.audio) {
      audio.push_back(AudioTransformer3DModel(AudioTransformerOptions{channels, audio_input_channels, o.heads, o.groups,
                                                                      o.audio_dim, o.audio_stacked, o.depth}));
      audio_modules->push_back(audio.back());
    }
  }
  if (o.motion) {
    motion.push_back(VanillaTemporalModule(channels, o.motion_cfg));
    motion_modules->push_back(motion.back());
  }
}

at::Tensor Block3DBase::resnet(size_t i, const at::Tensor& x, const UNet3DStep& s, bool checkpointed) {
  // A frozen resnet keeps only x and h with its own backward (nn/resnet.h): cheaper than
  // recomputing both convolutions, and the reentrant rule cannot change its gradient.
  if (!checkpointed || !s.checkpoint.active() || res[i]->frozen()) return res[i]->forward(x, s.temb);
  auto r = res[i].ptr();
  return nn::run_unit(s.checkpoint, *r, [r](const std::vector<at::Tensor>& a) { return r->forward(a[0], a[1]); },
                      {x, s.temb});
}

at::Tensor Block3DBase::cross_layer(size_t i, at::Tensor x, const UNet3DStep& s, bool checkpointed) {
  const std::string idx = "." + std::to_string(i);
  const int64_t frames = s.frames;
  const bool ckpt = checkpointed && s.checkpoint.active();
  // Motion frames: the reference bank's entries of the motion frames, or zeros (quirk: 4).
  at::Tensor mframes = attn[i]->bank_motion_frames(s.read, x.size(0) / frames, x.size(2), x.size(3));  // [B, C, nm, H, W]
  if (!mframes.defined())
    mframes = at::zeros({x.size(0) / frames, x.size(1), s.zero_motion_frames, x.size(2), x.size(3)}, x.options());

  if (!ckpt) {
    x = attn[i]->forward(x, s.context, frames, s.read, nullptr);
  } else {
    // The bank entries this transformer reads are unit inputs, so their gradients
    // (stage 1 trains the reference net) survive the recomputation.
    std::vector<at::Tensor> in{x, s.context};
    std::vector<std::string> paths;
    if (s.read.bank)
      for (const auto& blk : attn[i]->blocks)
        if (s.read.bank->contains(blk->path)) {
          paths.push_back(blk->path);
          in.push_back(s.read.bank->get(blk->path));
        }
    auto t = attn[i].ptr();
    const ReadOptions read = s.read;
    x = nn::run_unit(s.checkpoint, *t, [t, read, paths, frames](const std::vector<at::Tensor>& a) {
      ReferenceBank local;
      for (size_t k = 0; k < paths.size(); ++k) local.put(paths[k], a[2 + k]);
      ReadOptions ro = read;
      ro.bank = read.bank ? &local : nullptr;
      return t->forward(a[0], a[1], frames, ro, nullptr);
    }, in);
  }
  s.record(path_ + ".attentions" + idx, x);
  if (!audio.empty()) {
    if (!ckpt) {
      x = audio[i]->forward(x, s.audio, *s.masks, s.motion_scale);
    } else {
      auto m = audio[i].ptr();
      const AudioMasks masks = *s.masks;
      x = nn::run_unit(s.checkpoint, *m, [m, masks](const std::vector<at::Tensor>& a) {
        return m->forward(a[0], a[1], masks, a[2]);
      }, {x, s.audio, s.motion_scale});
    }
    s.record(path_ + ".audio_modules" + idx, x);
  }
  if (!motion.empty()) {
    const int64_t nm = mframes.size(2);
    at::Tensor in = at::cat({mframes.to(x.scalar_type()), unfold_frames(x, frames)}, 2);  // [B, C, nm+F, H, W]
    at::Tensor m;
    if (!ckpt) {
      m = motion[i]->forward(in);
    } else {
      auto mm = motion[i].ptr();
      // Upstream passes the face tokens to the motion module too (unused inside, but
      // they count for the reentrant rule).
      m = nn::run_unit(s.checkpoint, *mm, [mm](const std::vector<at::Tensor>& a) { return mm->forward(a[0]); },
                       {in, s.context});
    }
    if (s.hooks) (*s.hooks)[path_ + ".motion_modules" + idx] = m.contiguous();
    x = fold_frames(m.narrow(2, nm, frames));
  }
  return x;
}

at::Tensor Block3DBase::plain_layer(size_t i, at::Tensor x, const UNet3DStep& s) {
  if (motion.empty() || s.skip_motion_in_plain_blocks) return x;
  auto m = motion[i]->forward(unfold_frames(x, s.frames));
  if (s.hooks) (*s.hooks)[path_ + ".motion_modules." + std::to_string(i)] = m.contiguous();
  return fold_frames(m);
}

DownBlock3DImpl::DownBlock3DImpl(const Block3DOptions& o) {
  path_ = o.path;
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  if (o.cross_attention && o.audio) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (o.motion) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    const int64_t in = i == 0 ? o.in_channels : o.out_channels;
    res.push_back(make_resnet(o, in, o.out_channels));
    resnets->push_back(res.back());
    add_layer_modules(o, o.out_channels, in);  // quirk: audio width from the layer's input channels
  }
  if (o.resample) {
    downsamplers = register_module("downsamplers", torch::nn::ModuleList());
    down = nn::Downsample2D(o.out_channels, o.out_channels, o.downsample_padding);
    downsamplers->push_back(down);
  }
}

at::Tensor DownBlock3DImpl::forward(at::Tensor x, const UNet3DStep& s, std::vector<at::Tensor>& skips) {
  for (size_t i = 0; i < res.size(); ++i) {
    x = resnet(i, x, s, /*checkpointed=*/true);
    s.record(path_ + ".resnets." + std::to_string(i), x);
    x = attn.empty() ? plain_layer(i, x, s) : cross_layer(i, x, s, /*checkpointed=*/true);
    skips.push_back(x);
  }
  if (down) {
    x = down->forward(x);
    skips.push_back(x);
  }
  return x;
}

MidBlock3DCrossAttnImpl::MidBlock3DCrossAttnImpl(const Block3DOptions& o) {
  path_ = o.path;
  resnets = register_module("resnets", torch::nn::ModuleList());
  attentions = register_module("attentions", torch::nn::ModuleList());
  if (o.audio) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (o.motion) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  res.push_back(make_resnet(o, o.in_channels, o.in_channels));
  resnets->push_back(res.back());
  for (int64_t i = 0; i < o.layers; ++i) {
    add_layer_modules(o, o.in_channels, o.in_channels);
    res.push_back(make_resnet(o, o.in_channels, o.in_channels));
    resnets->push_back(res.back());
  }
}

at::Tensor MidBlock3DCrossAttnImpl::forward(at::Tensor x, const UNet3DStep& s) {
  x = res[0]->forward(x, s.temb);
  s.record(path_ + ".resnets.0", x);
  for (size_t i = 0; i < attn.size(); ++i) {
    x = cross_layer(i, x, s, /*checkpointed=*/false);  // upstream never checkpoints the mid block
    x = res[i + 1]->forward(x, s.temb);
    s.record(path_ + ".resnets." + std::to_string(i + 1), x);
  }
  return x;
}

UpBlock3DImpl::UpBlock3DImpl(const Block3DOptions& o) {
  path_ = o.path;
  resnets = register_module("resnets", torch::nn::ModuleList());
  if (o.cross_attention) attentions = register_module("attentions", torch::nn::ModuleList());
  if (o.cross_attention && o.audio) audio_modules = register_module("audio_modules", torch::nn::ModuleList());
  if (o.motion) motion_modules = register_module("motion_modules", torch::nn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    const int64_t skip = (i == o.layers - 1) ? o.in_channels : o.out_channels;
    const int64_t in = (i == 0) ? o.prev_output_channels : o.out_channels;
    res.push_back(make_resnet(o, in + skip, o.out_channels));
    resnets->push_back(res.back());
    add_layer_modules(o, o.out_channels, o.in_channels);  // quirk: audio width from the block's in_channels
  }
  if (o.resample) {
    upsamplers = register_module("upsamplers", torch::nn::ModuleList());
    up = nn::Upsample2D(o.out_channels, o.out_channels);
    upsamplers->push_back(up);
  }
}

at::Tensor UpBlock3DImpl::forward(at::Tensor x, std::vector<at::Tensor>& skips, const UNet3DStep& s,
                                  c10::optional<std::vector<int64_t>> up_size) {
  for (size_t i = 0; i < res.size(); ++i) {
    at::Tensor skip = std::move(skips.back());
    skips.pop_back();
    x = resnet(i, at::cat({x, skip}, 1), s, /*checkpointed=*/true);
    s.record(path_ + ".resnets." + std::to_string(i), x);
    x = attn.empty() ? plain_layer(i, x, s) : cross_layer(i, x, s, /*checkpointed=*/true);
  }
  if (up) x = up->forward(x, up_size);
  return x;
}

}  // namespace hallo::model
