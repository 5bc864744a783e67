#pragma once
// Spatial Transformer3DModel of the denoising UNet3D: a Transformer2DModel run on
// frames folded into the batch (keys norm, proj_in, transformer_blocks.J, proj_out),
// with upstream's reference "read" mode: attn1 attends to concat(own tokens,
// reference tokens) and the bank's motion-frame features are handed back.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/hallo/reference_bank.h"
#include "model/nn/transformer_2d.h"

namespace hallo::model {

struct ReadOptions {
  const ReferenceBank* bank = nullptr;             // null: plain self-attention, no motion frames
  c10::ScalarType bank_dtype = c10::ScalarType::Half;  // quirk: features pass through float16
  // CFG batches put their unconditional sample first: the leading `uncond_samples`
  // samples ignore the reference (1 for [uncond, cond] and [uncond, image, full]; 0: none).
  int64_t uncond_samples = 1;
  // Quirk: the reference row of sample b is tiled with repeat, so frame row k of the
  // [B*F] batch reads sample k % B's reference (upstream, at inference and in training).
  // false pairs every frame with its own sample's reference.
  bool tile_reference_rows = true;
};

// One BasicTransformerBlock in read mode. x: [B*F, L, C], context: [B*F, Lk, Ck].
// `motion` receives the bank's motion-frame features [B, S-1, L, C] when the bank holds the block.
at::Tensor reference_read_block(nn::BasicTransformerBlockImpl& blk, const at::Tensor& x, const at::Tensor& context,
                                int64_t frames, const ReadOptions& ro, at::Tensor* motion);

class Transformer3DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer3DModelImpl(const nn::Transformer2DOptions& o);
  // x: [B*F, C, H, W] (frames folded), context: [B, Lk, Ck] -> [B*F, C, H, W].
  // `motion_frames` gets [B, C, S-1, H, W] from the first block's bank entry (undefined without one).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, int64_t frames, const ReadOptions& ro,
                     at::Tensor* motion_frames);
  // The bank's motion-frame features of the first block, as the motion modules take
  // them: [B, C, S-1, H, W] (passed through the bank dtype); undefined without a bank entry.
  at::Tensor bank_motion_frames(const ReadOptions& ro, int64_t batch, int64_t h, int64_t w) const;

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::AnyModule proj_in, proj_out;
  torch::nn::ModuleList transformer_blocks;
  std::vector<nn::BasicTransformerBlock> blocks;

 private:
  bool linear_;
};
TORCH_MODULE(Transformer3DModel);

}  // namespace hallo::model
