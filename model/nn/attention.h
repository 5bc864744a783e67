#pragma once
// diffusers `Attention` (to_q / to_k / to_v / to_out.0): multi-head self or
// cross attention. The VAE variant adds `group_norm` and a residual and works
// on [B, C, H, W] feature maps.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <array>

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

// The four projections LoRA can adapt, in upstream's names (model/nn/lora.h).
enum class Proj { q = 0, k = 1, v = 2, out = 3 };
inline constexpr std::array<const char*, 4> kProjNames = {"to_q", "to_k", "to_v", "to_out.0"};

// A low-rank adapter on one projection, as PEFT's LoRA: y = W x + b + s * B (A x), with
// A (`lora_A`, [rank, in]) and B (`lora_B`, [out, rank]) registered under the projection
// so their keys read "<attention>.to_q.lora_A.weight". s = alpha / rank * multiplier.
struct LoraAdapter {
  torch::nn::Linear down{nullptr}, up{nullptr};  // lora_A, lora_B
  double scaling = 0;     // alpha / rank
  double multiplier = 1;  // the runtime scale (`--lora-scale`); 0 turns the adapter off
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

  // The projection's Linear, and its output with the adapter (when one is attached).
  // Every projection in the code base goes through project(), so an adapter is never skipped.
  torch::nn::Linear& projection(Proj p);
  at::Tensor project(Proj p, const at::Tensor& x);
  // Registers fresh lora_A / lora_B (uninitialised: the caller initialises or loads them).
  LoraAdapter& add_lora(Proj p, int64_t rank, double scaling);
  LoraAdapter* lora(Proj p) { return lora_[static_cast<size_t>(p)].down ? &lora_[static_cast<size_t>(p)] : nullptr; }

  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr};
  torch::nn::ModuleList to_out;  // [Linear, Dropout] so keys read to_out.0.*
  torch::nn::Linear out_proj{nullptr};

 private:
  int64_t heads_;
  std::array<LoraAdapter, 4> lora_;
};
TORCH_MODULE(Attention);

}  // namespace hallo::nn
