#include "model/nn/transformer_2d.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/dropout.h>

#include "model/nn/debug.h"

namespace hallo::nn {

namespace tnn = torch::nn;

namespace {

// [a | g] -> a * gelu(g)
at::Tensor geglu(const at::Tensor& h) {
  const auto ag = h.chunk(2, -1);
  return ag[0] * at::gelu(ag[1]);
}

// GEGLU's a * gelu(g) for h = [a | g] that keeps only h for backward. Autograd would
// also keep gelu(g) (half of h again: 42 MiB per SD1.5 block at 32x32 latents and 8
// frames); backward recomputes it. The same ops as autograd's Mul and Gelu backward,
// so the gradients are bitwise the same.
struct GegluFunction : torch::autograd::Function<GegluFunction> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& h) {
    ctx->save_for_backward({h});
    return {geglu(h)};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    const auto ag = ctx->get_saved_variables()[0].chunk(2, -1);
    const at::Tensor& dy = grad[0];
    return {at::cat({dy * at::gelu(ag[1]), at::gelu_backward(dy * ag[0], ag[1])}, -1)};
  }
};

}  // namespace

FeedForwardImpl::FeedForwardImpl(int64_t dim, int64_t mult) {
  const int64_t inner = dim * mult;
  // GEGLU is a module holding `proj` so the key reads ff.net.0.proj.weight.
  auto geglu = std::make_shared<tnn::Module>("GEGLU");
  geglu_proj_ = geglu->register_module("proj", tnn::Linear(dim, inner * 2));
  out_ = tnn::Linear(inner, dim);
  net = register_module("net", tnn::ModuleList());
  net->push_back(geglu);
  net->push_back(tnn::Dropout(0.0));
  net->push_back(out_);
}

at::Tensor FeedForwardImpl::forward(const at::Tensor& x) {
  const at::Tensor h = geglu_proj_->forward(x);  // [.., 2 * inner] = [a | g]
  const bool grad = at::GradMode::is_enabled() && h.requires_grad();
  return out_->forward(grad ? GegluFunction::apply(h)[0] : geglu(h));
}

BasicTransformerBlockImpl::BasicTransformerBlockImpl(const TransformerBlockOptions& o) {
  norm1 = register_module("norm1", tnn::LayerNorm(tnn::LayerNormOptions({o.dim}).eps(1e-5)));
  attn1 = register_module("attn1", Attention(AttentionOptions{o.dim, 0, o.heads, o.dim_head}));
  norm2 = register_module("norm2", tnn::LayerNorm(tnn::LayerNormOptions({o.dim}).eps(1e-5)));
  attn2 = register_module("attn2", Attention(AttentionOptions{o.dim, o.cross_attention_dim, o.heads, o.dim_head}));
  norm3 = register_module("norm3", tnn::LayerNorm(tnn::LayerNormOptions({o.dim}).eps(1e-5)));
  ff = register_module("ff", FeedForward(o.dim));
}

at::Tensor BasicTransformerBlockImpl::forward(const at::Tensor& x, const at::Tensor& context,
                                              model::ReferenceBank* write_bank) {
  auto n1 = norm1->forward(x);
  if (write_bank) write_bank->put(path, n1.clone());
  auto h = attn1->forward(n1) + x;
  check_finite(h, "BasicTransformerBlock.attn1");
  h = attn2->forward(norm2->forward(h), context) + h;
  check_finite(h, "BasicTransformerBlock.attn2");
  h = ff->forward(norm3->forward(h)) + h;
  check_finite(h, "BasicTransformerBlock.ff");
  return h;
}

Transformer2DModelImpl::Transformer2DModelImpl(const Transformer2DOptions& o) : linear_(o.use_linear_projection) {
  const int64_t inner = o.heads * o.dim_head;
  norm = register_module("norm", tnn::GroupNorm(tnn::GroupNormOptions(o.norm_groups, o.in_channels).eps(1e-6)));
  if (linear_) {
    proj_in = tnn::AnyModule(register_module("proj_in", tnn::Linear(o.in_channels, inner)));
  } else {
    proj_in = tnn::AnyModule(register_module("proj_in", tnn::Conv2d(tnn::Conv2dOptions(o.in_channels, inner, 1))));
  }
  transformer_blocks = register_module("transformer_blocks", tnn::ModuleList());
  for (int64_t i = 0; i < o.layers; ++i) {
    blocks.push_back(BasicTransformerBlock(TransformerBlockOptions{inner, o.heads, o.dim_head, o.cross_attention_dim}));
    transformer_blocks->push_back(blocks.back());
  }
  if (linear_) {
    proj_out = tnn::AnyModule(register_module("proj_out", tnn::Linear(inner, o.in_channels)));
  } else {
    proj_out = tnn::AnyModule(register_module("proj_out", tnn::Conv2d(tnn::Conv2dOptions(inner, o.in_channels, 1))));
  }
}

at::Tensor Transformer2DModelImpl::forward(const at::Tensor& x, const at::Tensor& context,
                                           model::ReferenceBank* write_bank) {
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  auto t = norm->forward(x);
  check_finite(t, "Transformer2DModel.norm (GroupNorm)");
  if (linear_) {
    t = t.permute({0, 2, 3, 1}).reshape({b, h * w, -1});  // [B, HW, C]
    t = proj_in.forward(t);
  } else {
    t = proj_in.forward(t);
    t = t.permute({0, 2, 3, 1}).reshape({b, h * w, -1});  // [B, HW, inner]
  }
  for (auto& blk : blocks) t = blk->forward(t, context, write_bank);
  if (linear_) {
    t = proj_out.forward(t);
    t = t.reshape({b, h, w, -1}).permute({0, 3, 1, 2}).contiguous();
  } else {
    t = t.reshape({b, h, w, -1}).permute({0, 3, 1, 2}).contiguous();
    t = proj_out.forward(t);
  }
  check_finite(t, "Transformer2DModel.proj_out");
  return t + x;
}

}  // namespace hallo::nn
