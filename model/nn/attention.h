#pragma once
// diffusers `Attention` (to_q / to_k / to_v / to_out.0): multi-head self or
// cross attention. The VAE variant adds `group_norm` and a residual and works
// on [B, C, H, W] feature maps.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

namespace hallo::nn {

struct AttentionOptions {
  int64_t query_dim = 0;
  int64_t cross_attention_dim = 0;  // 0: self-attention (K/V from query_dim)
  int64_t heads = 8;
  int64_t dim_head = 64;
  bool qkv_bias = false;
  int64_t norm_groups = 0;  // > 0: GroupNorm before attention (VAE mid-block)
  double norm_eps = 1e-6;
};

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& o);

  // x: [B, Lq, Cq], context: [B, Lk, Ck] or undefined for self-attention -> [B, Lq, Cq]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& context = {});
  // Attention of already projected q/k/v ([B, L, heads*dim_head]) followed by to_out.
  at::Tensor attend_projected(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
  // VAE form: x [B, C, H, W] -> group_norm -> self-attention over H*W -> + x
  at::Tensor forward_spatial(const at::Tensor& x);

  int64_t heads() const { return heads_; }

  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // [Linear, Dropout] so keys read to_out.0.*
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
};
TORCH_MODULE(Attention);

}  // namespace hallo::nn
