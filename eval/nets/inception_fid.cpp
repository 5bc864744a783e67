#include "eval/nets/inception_fid.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <array>

#include "core/error.h"
#include "eval/nets/frozen_bn.h"
#include "model/io/weights.h"
#include "model/nn/debug.h"
#include "model/nn/loader.h"

namespace hallo::eval::nets {

namespace tnn = torch::nn;

namespace fid {

// torchvision's BasicConv2d: bias-free conv, BatchNorm (eps 1e-3), ReLU. The
// released file carries num_batches_tracked for every BN, so strict loading wants it.
class BasicConv2dImpl : public tnn::Module {
 public:
  BasicConv2dImpl(int64_t in, int64_t out, std::array<int64_t, 2> kernel, std::array<int64_t, 2> padding = {0, 0},
                  int64_t stride = 1) {
    conv = register_module(
        "conv", tnn::Conv2d(tnn::Conv2dOptions(in, out, {kernel[0], kernel[1]})
                                .stride(stride)
                                .padding(torch::ExpandingArray<2>({padding[0], padding[1]}))
                                .bias(false)));
    bn = register_module("bn", FrozenBatchNorm(out, 1e-3, /*with_num_batches_tracked=*/true));
  }
  at::Tensor forward(const at::Tensor& x) {
    at::Tensor y = bn->forward(conv->forward(x));
    y.relu_();  // the BN output is a fresh tensor: in place as upstream's relu(inplace=True)
    nn::check_finite(y, "FidInceptionV3.BasicConv2d");
    return y;
  }

  tnn::Conv2d conv{nullptr};
  FrozenBatchNorm bn{nullptr};
};

namespace {
std::shared_ptr<BasicConv2dImpl> unit(tnn::Module& parent, const std::string& name, int64_t in, int64_t out,
                                      std::array<int64_t, 2> kernel, std::array<int64_t, 2> padding = {0, 0},
                                      int64_t stride = 1) {
  return parent.register_module(name, std::make_shared<BasicConv2dImpl>(in, out, kernel, padding, stride));
}
constexpr std::array<int64_t, 2> k1{1, 1}, k3{3, 3}, k5{5, 5}, k1x7{1, 7}, k7x1{7, 1}, k1x3{1, 3}, k3x1{3, 1};
constexpr std::array<int64_t, 2> p1{1, 1}, p2{2, 2}, p1x7{0, 3}, p7x1{3, 0}, p1x3{0, 1}, p3x1{1, 0};

// FID's pool branches differ from torchvision: padded positions do not count in the
// average (TF's 'SAME' average pooling, which the 2015 graph used).
at::Tensor fid_avg_pool(const at::Tensor& x) {
  return at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, /*ceil_mode=*/false, /*count_include_pad=*/false);
}
}  // namespace

// Mixed_5b/5c/5d (FIDInceptionA): branches 1x1 | 1x1>5x5 | 1x1>3x3>3x3 | pool>1x1.
class InceptionAImpl : public tnn::Module {
 public:
  InceptionAImpl(int64_t in, int64_t pool_features) {
    branch1x1 = unit(*this, "branch1x1", in, 64, k1);
    branch5x5_1 = unit(*this, "branch5x5_1", in, 48, k1);
    branch5x5_2 = unit(*this, "branch5x5_2", 48, 64, k5, p2);
    branch3x3dbl_1 = unit(*this, "branch3x3dbl_1", in, 64, k1);
    branch3x3dbl_2 = unit(*this, "branch3x3dbl_2", 64, 96, k3, p1);
    branch3x3dbl_3 = unit(*this, "branch3x3dbl_3", 96, 96, k3, p1);
    branch_pool = unit(*this, "branch_pool", in, pool_features, k1);
  }
  at::Tensor forward(const at::Tensor& x) {  // [N,in,H,W] -> [N,224+pool_features,H,W]
    at::Tensor b1 = branch1x1->forward(x);
    at::Tensor b5 = branch5x5_2->forward(branch5x5_1->forward(x));
    at::Tensor b3 = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
    at::Tensor bp = branch_pool->forward(fid_avg_pool(x));
    return at::cat({b1, b5, b3, bp}, 1);
  }

 private:
  std::shared_ptr<BasicConv2dImpl> branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3,
      branch_pool;
};

// Mixed_6a (torchvision InceptionB, unchanged by FID): grid reduction 35 -> 17.
class InceptionBImpl : public tnn::Module {
 public:
  explicit InceptionBImpl(int64_t in) {
    branch3x3 = unit(*this, "branch3x3", in, 384, k3, {0, 0}, 2);
    branch3x3dbl_1 = unit(*this, "branch3x3dbl_1", in, 64, k1);
    branch3x3dbl_2 = unit(*this, "branch3x3dbl_2", 64, 96, k3, p1);
    branch3x3dbl_3 = unit(*this, "branch3x3dbl_3", 96, 96, k3, {0, 0}, 2);
  }
  at::Tensor forward(const at::Tensor& x) {  // [N,in,H,W] -> [N,480+in,(H-3)/2+1,(W-3)/2+1]
    at::Tensor b3 = branch3x3->forward(x);
    at::Tensor bd = branch3x3dbl_3->forward(branch3x3dbl_2->forward(branch3x3dbl_1->forward(x)));
    at::Tensor bp = at::max_pool2d(x, {3, 3}, {2, 2});
    return at::cat({b3, bd, bp}, 1);
  }

 private:
  std::shared_ptr<BasicConv2dImpl> branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3;
};

// Mixed_6b..6e (FIDInceptionC): factorised 7x7 branches, c7 inner channels.
class InceptionCImpl : public tnn::Module {
 public:
  InceptionCImpl(int64_t in, int64_t c7) {
    branch1x1 = unit(*this, "branch1x1", in, 192, k1);
    branch7x7_1 = unit(*this, "branch7x7_1", in, c7, k1);
    branch7x7_2 = unit(*this, "branch7x7_2", c7, c7, k1x7, p1x7);
    branch7x7_3 = unit(*this, "branch7x7_3", c7, 192, k7x1, p7x1);
    branch7x7dbl_1 = unit(*this, "branch7x7dbl_1", in, c7, k1);
    branch7x7dbl_2 = unit(*this, "branch7x7dbl_2", c7, c7, k7x1, p7x1);
    branch7x7dbl_3 = unit(*this, "branch7x7dbl_3", c7, c7, k1x7, p1x7);
    branch7x7dbl_4 = unit(*this, "branch7x7dbl_4", c7, c7, k7x1, p7x1);
    branch7x7dbl_5 = unit(*this, "branch7x7dbl_5", c7, 192, k1x7, p1x7);
    branch_pool = unit(*this, "branch_pool", in, 192, k1);
  }
  at::Tensor forward(const at::Tensor& x) {  // [N,in,H,W] -> [N,768,H,W]
    at::Tensor b1 = branch1x1->forward(x);
    at::Tensor b7 = branch7x7_3->forward(branch7x7_2->forward(branch7x7_1->forward(x)));
    at::Tensor bd = branch7x7dbl_1->forward(x);
    bd = branch7x7dbl_5->forward(branch7x7dbl_4->forward(branch7x7dbl_3->forward(branch7x7dbl_2->forward(bd))));
    at::Tensor bp = branch_pool->forward(fid_avg_pool(x));
    return at::cat({b1, b7, bd, bp}, 1);
  }

 private:
  std::shared_ptr<BasicConv2dImpl> branch1x1, branch7x7_1, branch7x7_2, branch7x7_3, branch7x7dbl_1, branch7x7dbl_2,
      branch7x7dbl_3, branch7x7dbl_4, branch7x7dbl_5, branch_pool;
};

// Mixed_7a (torchvision InceptionD, unchanged by FID): grid reduction 17 -> 8.
class InceptionDImpl : public tnn::Module {
 public:
  explicit InceptionDImpl(int64_t in) {
    branch3x3_1 = unit(*this, "branch3x3_1", in, 192, k1);
    branch3x3_2 = unit(*this, "branch3x3_2", 192, 320, k3, {0, 0}, 2);
    branch7x7x3_1 = unit(*this, "branch7x7x3_1", in, 192, k1);
    branch7x7x3_2 = unit(*this, "branch7x7x3_2", 192, 192, k1x7, p1x7);
    branch7x7x3_3 = unit(*this, "branch7x7x3_3", 192, 192, k7x1, p7x1);
    branch7x7x3_4 = unit(*this, "branch7x7x3_4", 192, 192, k3, {0, 0}, 2);
  }
  at::Tensor forward(const at::Tensor& x) {  // [N,in,H,W] -> [N,512+in,(H-3)/2+1,(W-3)/2+1]
    at::Tensor b3 = branch3x3_2->forward(branch3x3_1->forward(x));
    at::Tensor b7 = branch7x7x3_1->forward(x);
    b7 = branch7x7x3_4->forward(branch7x7x3_3->forward(branch7x7x3_2->forward(b7)));
    at::Tensor bp = at::max_pool2d(x, {3, 3}, {2, 2});
    return at::cat({b3, b7, bp}, 1);
  }

 private:
  std::shared_ptr<BasicConv2dImpl> branch3x3_1, branch3x3_2, branch7x7x3_1, branch7x7x3_2, branch7x7x3_3, branch7x7x3_4;
};

// Mixed_7b (FIDInceptionE_1, avg pool without padded positions) and Mixed_7c
// (FIDInceptionE_2, max pool: the TF graph's last block pools with max, a bug that
// FID statistics have baked in since).
class InceptionEImpl : public tnn::Module {
 public:
  InceptionEImpl(int64_t in, bool max_pool_branch) : max_pool_branch_(max_pool_branch) {
    branch1x1 = unit(*this, "branch1x1", in, 320, k1);
    branch3x3_1 = unit(*this, "branch3x3_1", in, 384, k1);
    branch3x3_2a = unit(*this, "branch3x3_2a", 384, 384, k1x3, p1x3);
    branch3x3_2b = unit(*this, "branch3x3_2b", 384, 384, k3x1, p3x1);
    branch3x3dbl_1 = unit(*this, "branch3x3dbl_1", in, 448, k1);
    branch3x3dbl_2 = unit(*this, "branch3x3dbl_2", 448, 384, k3, p1);
    branch3x3dbl_3a = unit(*this, "branch3x3dbl_3a", 384, 384, k1x3, p1x3);
    branch3x3dbl_3b = unit(*this, "branch3x3dbl_3b", 384, 384, k3x1, p3x1);
    branch_pool = unit(*this, "branch_pool", in, 192, k1);
  }
  at::Tensor forward(const at::Tensor& x) {  // [N,in,H,W] -> [N,2048,H,W]
    at::Tensor b1 = branch1x1->forward(x);
    at::Tensor t = branch3x3_1->forward(x);
    at::Tensor b3 = at::cat({branch3x3_2a->forward(t), branch3x3_2b->forward(t)}, 1);  // [N,768,H,W]
    at::Tensor d = branch3x3dbl_2->forward(branch3x3dbl_1->forward(x));
    at::Tensor bd = at::cat({branch3x3dbl_3a->forward(d), branch3x3dbl_3b->forward(d)}, 1);  // [N,768,H,W]
    at::Tensor pooled = max_pool_branch_ ? at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : fid_avg_pool(x);
    at::Tensor bp = branch_pool->forward(pooled);
    return at::cat({b1, b3, bd, bp}, 1);
  }

 private:
  bool max_pool_branch_;
  std::shared_ptr<BasicConv2dImpl> branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b, branch3x3dbl_1, branch3x3dbl_2,
      branch3x3dbl_3a, branch3x3dbl_3b, branch_pool;
};

}  // namespace fid

FidInceptionV3Impl::FidInceptionV3Impl() {
  using fid::unit;
  // Registration order follows torchvision's, so named_parameters() lists the file's order.
  Conv2d_1a_3x3 = unit(*this, "Conv2d_1a_3x3", 3, 32, fid::k3, {0, 0}, 2);
  Conv2d_2a_3x3 = unit(*this, "Conv2d_2a_3x3", 32, 32, fid::k3);
  Conv2d_2b_3x3 = unit(*this, "Conv2d_2b_3x3", 32, 64, fid::k3, fid::p1);
  Conv2d_3b_1x1 = unit(*this, "Conv2d_3b_1x1", 64, 80, fid::k1);
  Conv2d_4a_3x3 = unit(*this, "Conv2d_4a_3x3", 80, 192, fid::k3);
  Mixed_5b = register_module("Mixed_5b", std::make_shared<fid::InceptionAImpl>(192, 32));
  Mixed_5c = register_module("Mixed_5c", std::make_shared<fid::InceptionAImpl>(256, 64));
  Mixed_5d = register_module("Mixed_5d", std::make_shared<fid::InceptionAImpl>(288, 64));
  Mixed_6a = register_module("Mixed_6a", std::make_shared<fid::InceptionBImpl>(288));
  Mixed_6b = register_module("Mixed_6b", std::make_shared<fid::InceptionCImpl>(768, 128));
  Mixed_6c = register_module("Mixed_6c", std::make_shared<fid::InceptionCImpl>(768, 160));
  Mixed_6d = register_module("Mixed_6d", std::make_shared<fid::InceptionCImpl>(768, 160));
  Mixed_6e = register_module("Mixed_6e", std::make_shared<fid::InceptionCImpl>(768, 192));
  Mixed_7a = register_module("Mixed_7a", std::make_shared<fid::InceptionDImpl>(768));
  Mixed_7b = register_module("Mixed_7b", std::make_shared<fid::InceptionEImpl>(1280, /*max_pool_branch=*/false));
  Mixed_7c = register_module("Mixed_7c", std::make_shared<fid::InceptionEImpl>(2048, /*max_pool_branch=*/true));
  // The 1008-class head is in the file (strict loading needs it) but FID stops at the pool.
  register_module("fc", tnn::Linear(2048, 1008));
}

int FidInceptionV3Impl::block_index(int dim) {
  switch (dim) {
    case 64: return 0;
    case 192: return 1;
    case 768: return 2;
    case 2048: return 3;
    default: fail_at("FidInceptionV3", "feature dim {} is not one of 64, 192, 768, 2048", dim);
  }
}

std::map<int, at::Tensor> FidInceptionV3Impl::features(const at::Tensor& x, const std::vector<int>& dims) {
  return features(x, dims, nullptr);
}

std::map<int, at::Tensor> FidInceptionV3Impl::features(const at::Tensor& input, const std::vector<int>& dims,
                                                       std::map<std::string, at::Tensor>* hooks) {
  if (input.dim() != 4 || input.size(1) != 3)
    fail_at("FidInceptionV3", "expected RGB images [N,3,H,W], got shape {}", c10::str(input.sizes()));
  if (dims.empty()) fail_at("FidInceptionV3", "no feature dims requested");
  int last = 0;
  for (int d : dims) last = std::max(last, block_index(d));

  // pytorch-fid resizes unconditionally (a no-op at 299) and never antialiases.
  at::Tensor x = at::upsample_bilinear2d(input.to(at::kFloat), {299, 299}, /*align_corners=*/false);
  x = x.mul(2).sub_(1);  // [N,3,299,299] in [-1,1], as upstream's 2 * x - 1
  if (hooks) (*hooks)["blocks.0.input"] = x;

  std::array<at::Tensor, 4> out;  // block outputs, [N,C,h,w]
  // block0: [N,3,299,299] -> [N,64,73,73]
  x = Conv2d_2b_3x3->forward(Conv2d_2a_3x3->forward(Conv2d_1a_3x3->forward(x)));
  out[0] = x = at::max_pool2d(x, {3, 3}, {2, 2});
  if (last >= 1) {  // block1: -> [N,192,35,35]
    x = Conv2d_4a_3x3->forward(Conv2d_3b_1x1->forward(x));
    out[1] = x = at::max_pool2d(x, {3, 3}, {2, 2});
  }
  if (last >= 2) {  // block2: -> [N,288,35,35] -> [N,768,17,17]
    x = Mixed_5d->forward(Mixed_5c->forward(Mixed_5b->forward(x)));
    x = Mixed_6a->forward(x);
    out[2] = x = Mixed_6e->forward(Mixed_6d->forward(Mixed_6c->forward(Mixed_6b->forward(x))));
  }
  if (last >= 3) {  // block3: -> [N,1280,8,8] -> [N,2048,8,8]
    out[3] = Mixed_7c->forward(Mixed_7b->forward(Mixed_7a->forward(x)));
  }
  if (hooks)
    for (int i = 0; i <= last; ++i) (*hooks)["blocks." + std::to_string(i) + ".output"] = out[i];

  std::map<int, at::Tensor> feats;
  for (int d : dims) {
    // Block 3 ends in AdaptiveAvgPool2d(1); get_activations pools the others the same way.
    feats[d] = at::adaptive_avg_pool2d(out[block_index(d)], {1, 1}).flatten(1);  // [N,d]
  }
  return feats;
}

at::Tensor FidInceptionV3Impl::forward(const at::Tensor& x) { return features(x, {2048}).at(2048); }

FidInceptionV3 load_fid_inception(const io::StateDict& sd, const std::string& source) {
  FidInceptionV3 net;
  try {
    nn::load_weights(*net, align_num_batches_tracked(sd, *net));  // strict otherwise
  } catch (const Error&) {
    rethrow_with_context(source);
  }
  net->eval();
  for (auto& p : net->parameters()) p.set_requires_grad(false);
  return net;
}

FidInceptionV3 load_fid_inception(const std::filesystem::path& weights) {
  return load_fid_inception(io::StateDict(io::open_weights(weights)), weights.string());
}

at::Tensor fid_features(FidInceptionV3Impl& net, const at::Tensor& frames_u8, int64_t batch) {
  if (frames_u8.dim() != 4 || frames_u8.size(3) != 3 || frames_u8.scalar_type() != at::kByte)
    fail_at("fid_features", "expected uint8 RGB frames [N,H,W,3], got {} {}", c10::toString(frames_u8.scalar_type()),
            c10::str(frames_u8.sizes()));
  if (batch <= 0) fail_at("fid_features", "batch must be positive, got {}", batch);
  torch::NoGradGuard ng;
  const int64_t n = frames_u8.size(0);
  std::vector<at::Tensor> parts;
  for (int64_t s = 0; s < n; s += batch) {
    const int64_t e = std::min(n, s + batch);
    // ToTensor: u8/255, HWC -> CHW; contiguous so every conv sees plain NCHW.
    at::Tensor x = frames_u8.slice(0, s, e).permute({0, 3, 1, 2}).contiguous().to(at::kFloat).div_(255);  // [b,3,H,W]
    parts.push_back(net.forward(x));  // [b,2048]
  }
  if (parts.empty()) return at::empty({0, 2048}, at::kFloat);
  return at::cat(parts, 0);
}

}  // namespace hallo::eval::nets
