#pragma once
// diffusers BasicTransformerBlock (norm1/attn1, norm2/attn2, norm3/ff with GEGLU)
// and Transformer2DModel (norm, proj_in, transformer_blocks, proj_out).
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "model/hallo/reference_bank.h"
#include "model/nn/attention.h"

namespace hallo::nn {

// ff.net.0 = GEGLU(proj: dim -> 2*inner), ff.net.1 = Dropout, ff.net.2 = Linear(inner -> dim)
class FeedForwardImpl : public torch::nn::Module {
 public:
  FeedForwardImpl(int64_t dim, int64_t mult = 4);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::ModuleList net;

 private:
  torch::nn::Linear geglu_proj_{nullptr}, out_{nullptr};
};
TORCH_MODULE(FeedForward);

struct TransformerBlockOptions {
  int64_t dim = 0, heads = 8, dim_head = 64;
  int64_t cross_attention_dim = 0;  // 0: attn2 is self-attention too
};

class BasicTransformerBlockImpl : public torch::nn::Module {
 public:
  explicit BasicTransformerBlockImpl(const TransformerBlockOptions& o);
  // x: [B, L, C], context: [B, Lk, Ck] -> [B, L, C]. With `write_bank`, the norm1
  // output is stored under this block's path (ReferenceNet write mode).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, model::ReferenceBank* write_bank = nullptr);

  // Module path inside its network, set by the owning model after construction.
  std::string path;

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr};
  Attention attn1{nullptr}, attn2{nullptr};
  FeedForward ff{nullptr};
};
TORCH_MODULE(BasicTransformerBlock);

struct Transformer2DOptions {
  int64_t in_channels = 0, heads = 8, dim_head = 64, layers = 1;
  int64_t cross_attention_dim = 0;
  int64_t norm_groups = 32;
  bool use_linear_projection = false;
};

class Transformer2DModelImpl : public torch::nn::Module {
 public:
  explicit Transformer2DModelImpl(const Transformer2DOptions& o);
  // x: [B, C, H, W], context: [B, Lk, Ck] -> [B, C, H, W]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context, model::ReferenceBank* write_bank = nullptr);

  torch::nn::GroupNorm norm{nullptr};
  torch::nn::AnyModule proj_in, proj_out;  // Conv2d 1x1 or Linear per config
  torch::nn::ModuleList transformer_blocks;
  std::vector<BasicTransformerBlock> blocks;  // typed view of transformer_blocks

 private:
  bool linear_;
};
TORCH_MODULE(Transformer2DModel);

}  // namespace hallo::nn
