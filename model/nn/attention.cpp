#include "model/nn/attention.h"

#include <torch/nn/modules/dropout.h>

#include <stdexcept>

#include "model/nn/attention_kernel.h"

namespace hallo::nn {

namespace tnn = torch::nn;

AttentionImpl::AttentionImpl(const AttentionOptions& o) : heads_(o.heads) {
  const int64_t inner = o.heads * o.dim_head;
  const int64_t kv_dim = o.cross_attention_dim > 0 ? o.cross_attention_dim : o.query_dim;
  if (o.norm_groups > 0)
    group_norm = register_module("group_norm", tnn::GroupNorm(tnn::GroupNormOptions(o.norm_groups, o.query_dim).eps(o.norm_eps)));
  to_q = register_module("to_q", tnn::Linear(tnn::LinearOptions(o.query_dim, inner).bias(o.qkv_bias)));
  to_k = register_module("to_k", tnn::Linear(tnn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  to_v = register_module("to_v", tnn::Linear(tnn::LinearOptions(kv_dim, inner).bias(o.qkv_bias)));
  out_proj = tnn::Linear(tnn::LinearOptions(inner, o.query_dim));
  to_out = register_module("to_out", tnn::ModuleList(out_proj, tnn::Dropout(0.0)));
}

at::Tensor AttentionImpl::attend_projected(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  const int64_t b = q.size(0), lq = q.size(1), lk = k.size(1), inner = q.size(2), d = inner / heads_;
  // [B, L, H*D] -> [B*H, L, D]
  auto split = [&](const at::Tensor& t, int64_t l) { return t.view({b, l, heads_, d}).permute({0, 2, 1, 3}).reshape({b * heads_, l, d}); };
  auto o = attention(split(q, lq), split(k, lk), split(v, lk));  // [B*H, Lq, D]
  o = o.view({b, heads_, lq, d}).permute({0, 2, 1, 3}).reshape({b, lq, inner});
  return project(Proj::out, o);
}

torch::nn::Linear& AttentionImpl::projection(Proj p) {
  switch (p) {
    case Proj::q: return to_q;
    case Proj::k: return to_k;
    case Proj::v: return to_v;
    case Proj::out: break;
  }
  return out_proj;
}

at::Tensor AttentionImpl::project(Proj p, const at::Tensor& x) {
  auto y = projection(p)->forward(x);
  LoraAdapter& a = lora_[static_cast<size_t>(p)];
  // [.., in] -> [.., rank] -> [.., out]; skipped entirely at multiplier 0 (the base net's bits).
  if (a.down && a.multiplier != 0) y = y + a.up->forward(a.down->forward(x)) * (a.scaling * a.multiplier);
  return y;
}

LoraAdapter& AttentionImpl::add_lora(Proj p, int64_t rank, double scaling) {
  auto& lin = projection(p);
  LoraAdapter& a = lora_[static_cast<size_t>(p)];
  if (a.down) throw std::logic_error("add_lora: the projection already has an adapter");
  const int64_t in = lin->options.in_features(), out = lin->options.out_features();
  a.down = lin->register_module("lora_A", tnn::Linear(tnn::LinearOptions(in, rank).bias(false)));
  a.up = lin->register_module("lora_B", tnn::Linear(tnn::LinearOptions(rank, out).bias(false)));
  a.down->to(lin->weight.device(), lin->weight.scalar_type());
  a.up->to(lin->weight.device(), lin->weight.scalar_type());
  a.scaling = scaling;
  a.multiplier = 1;
  return a;
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& context) {
  const at::Tensor& ctx = context.defined() ? context : x;
  return attend_projected(project(Proj::q, x), project(Proj::k, ctx), project(Proj::v, ctx));
}

at::Tensor AttentionImpl::forward_spatial(const at::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  auto t = group_norm->forward(x).view({b, c, h * w}).transpose(1, 2);  // [B, HW, C]
  t = forward(t);
  return t.transpose(1, 2).reshape({b, c, h, w}) + x;
}

}  // namespace hallo::nn
