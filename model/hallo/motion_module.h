#pragma once
// AnimateDiff v2 "Vanilla" motion module (upstream hallo/models/motion_module.py):
// temporal_transformer = GroupNorm(32, C, 1e-6) -> Linear proj_in -> temporal
// transformer blocks (LayerNorm -> +PE -> self-attention over frames, batch b*h*w;
// then LayerNorm -> GEGLU FF) -> Linear proj_out -> + residual.
// Keys match mm_sd_v15_v2.ckpt: ...attention_blocks.J.{to_q,to_k,to_v,to_out.0,pos_encoder.pe}.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/hallo/unet_3d_config.h"
#include "model/nn/attention.h"
#include "model/nn/transformer_2d.h"

namespace hallo::model {

// Sinusoidal table registered as the (persistent) buffer `pe`: [1, max_len, C].
class PositionalEncodingImpl : public torch::nn::Module {
 public:
  PositionalEncodingImpl(int64_t dim, int64_t max_len);
  at::Tensor forward(const at::Tensor& x);  // x: [N, F, C] -> x + pe[:, :F]
  at::Tensor pe;
};
TORCH_MODULE(PositionalEncoding);

// Temporal self-attention ("VersatileAttention", mode Temporal): an Attention with pos_encoder.
class VersatileAttentionImpl : public nn::AttentionImpl {
 public:
  VersatileAttentionImpl(int64_t dim, int64_t heads, int64_t dim_head, bool pos_encoding, int64_t max_len);
  // x: [B*F, L, C] -> [B*F, L, C]; attention runs over F for each of the B*L positions.
  at::Tensor forward_temporal(const at::Tensor& x, int64_t frames);
  // x already laid out as sequences over frames: [B*L, F, C] -> same (no permutes).
  at::Tensor forward_sequences(const at::Tensor& x);
  PositionalEncoding pos_encoder{nullptr};
};
TORCH_MODULE(VersatileAttention);

class TemporalTransformerBlockImpl : public torch::nn::Module {
 public:
  TemporalTransformerBlockImpl(int64_t dim, const MotionModuleConfig& c);
  at::Tensor forward(const at::Tensor& x, int64_t frames);  // [B*F, L, C] -> same
  at::Tensor forward_sequences(const at::Tensor& x);        // [B*L, F, C] -> same
  torch::nn::ModuleList attention_blocks, norms;
  std::vector<VersatileAttention> attn;
  std::vector<torch::nn::LayerNorm> norm;
  nn::FeedForward ff{nullptr};
  torch::nn::LayerNorm ff_norm{nullptr};
};
TORCH_MODULE(TemporalTransformerBlock);

class TemporalTransformer3DModelImpl : public torch::nn::Module {
 public:
  TemporalTransformer3DModelImpl(int64_t channels, const MotionModuleConfig& c);
  at::Tensor forward(const at::Tensor& x);  // [B, C, F, H, W] -> same
  torch::nn::GroupNorm norm{nullptr};
  torch::nn::Linear proj_in{nullptr}, proj_out{nullptr};
  torch::nn::ModuleList transformer_blocks;
  std::vector<TemporalTransformerBlock> blocks;
};
TORCH_MODULE(TemporalTransformer3DModel);

class VanillaTemporalModuleImpl : public torch::nn::Module {
 public:
  VanillaTemporalModuleImpl(int64_t channels, const MotionModuleConfig& c);
  at::Tensor forward(const at::Tensor& x) { return temporal_transformer->forward(x); }  // [B, C, F, H, W]
  TemporalTransformer3DModel temporal_transformer{nullptr};
};
TORCH_MODULE(VanillaTemporalModule);

}  // namespace hallo::model
