#pragma once
// UNet3D down / mid / up blocks (upstream hallo/models/unet_3d_blocks.py). Tensors
// travel with frames folded into the batch ([B*F, C, H, W]); motion modules see
// [B, C, F, H, W]. Cross-attention layers run, as upstream's checkpointed train-mode
// path does: resnet -> spatial transformer (reference read) -> audio module ->
// motion module over [motion frames; frames] (leading motion frames dropped after).
// CrossAttn*Block3D and plain *Block3D share one class each (plain: no attentions).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>

#include <map>
#include <string>
#include <vector>

#include "model/hallo/audio_attention.h"
#include "model/hallo/motion_module.h"
#include "model/hallo/transformer_3d.h"
#include "model/hallo/unet_3d_config.h"
#include "model/nn/grad_checkpoint.h"
#include "model/nn/resnet.h"

namespace hallo::model {

using Hooks = std::map<std::string, at::Tensor>;

// Per-call inputs every block needs.
struct UNet3DStep {
  int64_t frames = 1;
  at::Tensor temb;          // [B*F, T]
  at::Tensor context;       // [B, L, cross_dim]
  at::Tensor audio;         // [B, F, T, audio_dim]
  const AudioMasks* masks = nullptr;
  at::Tensor motion_scale;  // [3] (pose, face, lip) or undefined
  ReadOptions read;
  bool skip_motion_in_plain_blocks = true;
  int64_t zero_motion_frames = 4;  // frames prepended when there is no reference bank (quirk: 4)
  // Upstream checkpoints every unit of the down and up blocks (training mode with
  // gradient checkpointing); the mid block never. See model/nn/grad_checkpoint.h.
  nn::CheckpointPolicy checkpoint;
  Hooks* hooks = nullptr;
  void record(const std::string& key, const at::Tensor& folded) const;  // stores [B, C, F, H, W]
};

struct Block3DOptions {
  std::string path;  // "down_blocks.0", for hooks
  int64_t in_channels = 0, out_channels = 0, temb_channels = 0, prev_output_channels = 0;
  int64_t layers = 2, groups = 32, heads = 8, cross_attention_dim = 768;
  double eps = 1e-5, output_scale_factor = 1.0;
  bool cross_attention = true, use_linear_projection = false, resample = true;
  int64_t downsample_padding = 1;
  bool audio = true;       // audio_modules (cross-attention blocks only)
  bool audio_stacked = true;
  int64_t audio_dim = 768, depth = 0;
  bool motion = true;      // motion_modules
  MotionModuleConfig motion_cfg;
};

// Shared layer lists of one block.
class Block3DBase : public torch::nn::Module {
 public:
  torch::nn::ModuleList resnets, attentions, audio_modules, motion_modules;
  std::vector<nn::ResnetBlock2D> res;
  std::vector<Transformer3DModel> attn;
  std::vector<AudioTransformer3DModel> audio;
  std::vector<VanillaTemporalModule> motion;

 protected:
  std::string path_;
  void add_layer_modules(const Block3DOptions& o, int64_t channels, int64_t audio_input_channels);
  // Layer i after its resnet: transformer, audio, motion (see file comment).
  // `checkpointed`: each of the three runs as one unit under s.checkpoint.
  at::Tensor cross_layer(size_t i, at::Tensor x, const UNet3DStep& s, bool checkpointed);
  // Resnet i, as a checkpointed unit when `checkpointed`.
  at::Tensor resnet(size_t i, const at::Tensor& x, const UNet3DStep& s, bool checkpointed);
  // Plain-block layer i after its resnet: motion module on the frames alone, unless skipped (quirk).
  at::Tensor plain_layer(size_t i, at::Tensor x, const UNet3DStep& s);
};

class DownBlock3DImpl : public Block3DBase {
 public:
  explicit DownBlock3DImpl(const Block3DOptions& o);
  // x: [B*F, Cin, H, W] -> [B*F, Cout, H/2, W/2]; appends one skip per layer (+1 after downsampling).
  at::Tensor forward(at::Tensor x, const UNet3DStep& s, std::vector<at::Tensor>& skips);
  torch::nn::ModuleList downsamplers;
  nn::Downsample2D down{nullptr};
};
TORCH_MODULE(DownBlock3D);

class MidBlock3DCrossAttnImpl : public Block3DBase {
 public:
  explicit MidBlock3DCrossAttnImpl(const Block3DOptions& o);
  at::Tensor forward(at::Tensor x, const UNet3DStep& s);  // [B*F, C, H, W] -> same
};
TORCH_MODULE(MidBlock3DCrossAttn);

class UpBlock3DImpl : public Block3DBase {
 public:
  explicit UpBlock3DImpl(const Block3DOptions& o);
  // Consumes `layers` skips from the back of `skips`; upsamples to `up_size` when given.
  at::Tensor forward(at::Tensor x, std::vector<at::Tensor>& skips, const UNet3DStep& s,
                     c10::optional<std::vector<int64_t>> up_size);
  torch::nn::ModuleList upsamplers;
  nn::Upsample2D up{nullptr};
};
TORCH_MODULE(UpBlock3D);

}  // namespace hallo::model
