#pragma once
// Hallo's denoising UNet3DConditionModel (upstream hallo/models/unet_3d.py): SD UNet2D
// weights inflated over frames, plus audio modules and AnimateDiff motion modules,
// the face-locator feature added after conv_in, and ReferenceNet features read
// from an explicit ReferenceBank.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/hallo/reference_bank.h"
#include "model/hallo/unet_3d_blocks.h"
#include "model/hallo/unet_3d_config.h"
#include "model/nn/embeddings.h"

namespace hallo::model {

class UNet3DConditionModelImpl : public torch::nn::Module {
 public:
  explicit UNet3DConditionModelImpl(const UNet3DConfig& c);

  // sample: [B, Cin, F, H, W]; timestep: [] or [B]; context: [B, L, cross_dim];
  // face_locator_feature: [B, C0, F, H, W] or undefined; masks: per level [B*F, H_l*W_l];
  // audio: [B, F, T, audio_dim]; motion_scale: [3] (pose, face, lip) or undefined;
  // bank: reference features keyed by this model's block paths, or null (then no
  // reference attention and 4 zero motion frames, as upstream); uncond_samples: a CFG
  // batch ([uncond, cond] or [uncond, image, full]) whose leading samples ignore the reference.
  // -> [B, Cout, F, H, W]. `hooks` receives block outputs as [B, C, F, H, W].
  at::Tensor forward(const at::Tensor& sample, const at::Tensor& timestep, const at::Tensor& context,
                     const at::Tensor& face_locator_feature, const AudioMasks& masks, const at::Tensor& audio,
                     const at::Tensor& motion_scale, const ReferenceBank* bank, Hooks* hooks = nullptr,
                     int64_t uncond_samples = 1);

  // Every spatial BasicTransformerBlock with its path and width (for reference pairing).
  std::vector<BlockInfo> transformer_blocks() const;
  const UNet3DConfig& config() const { return cfg_; }
  UNet3DConfig& mutable_config() { return cfg_; }  // runtime switches (skip_motion_in_plain_blocks, bank_dtype, ...)
  // Gradient checkpointing of the down/up-block units (training only; see grad_checkpoint.h).
  void set_checkpointing(const nn::CheckpointPolicy& p) { checkpoint_ = p; }
  const nn::CheckpointPolicy& checkpointing() const { return checkpoint_; }

  torch::nn::Conv2d conv_in{nullptr}, conv_out{nullptr};
  nn::TimestepEmbedding time_embedding{nullptr};
  torch::nn::ModuleList down_blocks, up_blocks;
  std::vector<DownBlock3D> downs;
  std::vector<UpBlock3D> ups;
  MidBlock3DCrossAttn mid_block{nullptr};
  torch::nn::GroupNorm conv_norm_out{nullptr};

 private:
  UNet3DConfig cfg_;
  nn::CheckpointPolicy checkpoint_;
  std::vector<nn::BasicTransformerBlock> tblocks_;
};
TORCH_MODULE(UNet3DConditionModel);

}  // namespace hallo::model
