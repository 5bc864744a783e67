#include "eval/nets/i3d.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/nn/modules/conv.h>
#include <torch/script.h>

#include <algorithm>
#include <optional>

#include "core/error.h"
#include "eval/nets/frozen_bn.h"
#include "model/io/blob.h"
#include "model/io/weights.h"
#include "model/io/zip_reader.h"
#include "model/nn/loader.h"

namespace hallo::eval::nets {

using Triple = std::array<int64_t, 3>;

std::array<int64_t, 2> tf_same_padding(int64_t size, int64_t kernel, int64_t stride) {
  const int64_t pad = size % stride == 0 ? std::max<int64_t>(kernel - stride, 0)
                                         : std::max<int64_t>(kernel - size % stride, 0);
  return {pad / 2, pad - pad / 2};
}

const std::vector<std::string>& i3d_endpoints() {
  static const std::vector<std::string> names = {
      "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3", "Mixed_3b",
      "Mixed_3c",      "MaxPool3d_4a_3x3", "Mixed_4b",      "Mixed_4c",      "Mixed_4d",         "Mixed_4e",
      "Mixed_4f",      "MaxPool3d_5a_2x2", "Mixed_5b",      "Mixed_5c"};
  return names;
}

namespace {

// {front, back} SAME padding of T, H, W for x [B,C,T,H,W].
std::array<std::array<int64_t, 2>, 3> same_pads(const at::Tensor& x, const Triple& k, const Triple& s) {
  return {tf_same_padding(x.size(2), k[0], s[0]), tf_same_padding(x.size(3), k[1], s[1]),
          tf_same_padding(x.size(4), k[2], s[2])};
}

// Zero padding in F.pad order (W front/back, H front/back, T front/back).
at::Tensor pad_zeros(const at::Tensor& x, const std::array<std::array<int64_t, 2>, 3>& p) {
  if (p[0][0] == 0 && p[0][1] == 0 && p[1][0] == 0 && p[1][1] == 0 && p[2][0] == 0 && p[2][1] == 0) return x;
  return at::constant_pad_nd(x, {p[2][0], p[2][1], p[1][0], p[1][1], p[0][0], p[0][1]}, 0.0);
}

// Unit3D: conv3d (padding computed per input, TF SAME) then, for the trunk, a
// bias-free conv + BatchNorm + ReLU; the logits unit is a conv with bias alone.
class Unit3DImpl : public torch::nn::Module {
 public:
  // bn_eps set: bias-free conv + BN(eps) + ReLU. Unset: conv with bias, nothing after.
  Unit3DImpl(int64_t in, int64_t out, Triple kernel, Triple stride, std::optional<double> bn_eps)
      : kernel_(kernel), stride_(stride) {
    conv3d = register_module(
        "conv3d", torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, kernel).stride(stride).bias(!bn_eps)));
    if (bn_eps) bn = register_module("bn", FrozenBatchNorm(out, *bn_eps, /*with_num_batches_tracked=*/false));
  }

  at::Tensor forward(const at::Tensor& x) {  // [B,Cin,T,H,W] -> [B,Cout,ceil(T/s),ceil(H/s),ceil(W/s)]
    const auto p = same_pads(x, kernel_, stride_);
    at::Tensor y;
    if (p[0][0] == p[0][1] && p[1][0] == p[1][1] && p[2][0] == p[2][1]) {
      // Symmetric zero padding is the conv's own padding: saves a padded copy.
      y = at::conv3d(x, conv3d->weight, conv3d->bias, stride_, {p[0][0], p[1][0], p[2][0]});
    } else {
      y = at::conv3d(pad_zeros(x, p), conv3d->weight, conv3d->bias, stride_);
    }
    if (!bn) return y;
    return at::relu(bn->forward(y));
  }

  torch::nn::Conv3d conv3d{nullptr};
  FrozenBatchNorm bn{nullptr};

 private:
  Triple kernel_, stride_;
};
TORCH_MODULE(Unit3D);

// MaxPool3dSamePadding: the ports pad with zeros (not -inf) before max pooling; the
// inputs are post-ReLU, but keep the zeros so border maxima match exactly anyway.
class MaxPoolSameImpl : public torch::nn::Module {
 public:
  MaxPoolSameImpl(Triple kernel, Triple stride) : kernel_(kernel), stride_(stride) {}
  at::Tensor forward(const at::Tensor& x) {  // [B,C,T,H,W] -> [B,C,ceil(T/s),ceil(H/s),ceil(W/s)]
    return at::max_pool3d(pad_zeros(x, same_pads(x, kernel_, stride_)), kernel_, stride_);
  }

 private:
  Triple kernel_, stride_;
};
TORCH_MODULE(MaxPoolSame);

// Inception block: 1x1 | 1x1 > 3x3 | 1x1 > 3x3 | 3x3 max pool (stride 1) > 1x1,
// concatenated on channels. `oc` = {b0, b1a, b1b, b2a, b2b, b3b} widths.
class InceptionBlockImpl : public torch::nn::Module {
 public:
  InceptionBlockImpl(int64_t in, const std::array<int64_t, 6>& oc, double eps) {
    const Triple one{1, 1, 1}, three{3, 3, 3};
    b0 = register_module("b0", Unit3D(in, oc[0], one, one, eps));
    b1a = register_module("b1a", Unit3D(in, oc[1], one, one, eps));
    b1b = register_module("b1b", Unit3D(oc[1], oc[2], three, one, eps));
    b2a = register_module("b2a", Unit3D(in, oc[3], one, one, eps));
    b2b = register_module("b2b", Unit3D(oc[3], oc[4], three, one, eps));
    b3a = register_module("b3a", MaxPoolSame(three, one));
    b3b = register_module("b3b", Unit3D(in, oc[5], one, one, eps));
  }
  at::Tensor forward(const at::Tensor& x) {  // [B,in,T,H,W] -> [B,b0+b1b+b2b+b3b,T,H,W]
    return at::cat({b0->forward(x), b1b->forward(b1a->forward(x)), b2b->forward(b2a->forward(x)),
                    b3b->forward(b3a->forward(x))},
                   1);
  }

  Unit3D b0{nullptr}, b1a{nullptr}, b1b{nullptr}, b2a{nullptr}, b2b{nullptr}, b3b{nullptr};
  MaxPoolSame b3a{nullptr};
};
TORCH_MODULE(InceptionBlock);

// [B,C,...] -> [B,C]: the golden's hooks average every endpoint over T,H,W.
at::Tensor spatiotemporal_mean(const at::Tensor& x) { return x.flatten(2).mean(2); }

}  // namespace

InceptionI3dImpl::InceptionI3dImpl(I3DOptions o) : opt_(o) {
  // Registered first, like the Python module (its state_dict starts with logits.*).
  const Triple one{1, 1, 1};
  logits_ = torch::nn::AnyModule(register_module("logits", Unit3D(1024, o.num_classes, one, one, std::nullopt)));

  const double eps = o.bn_eps;
  auto unit = [&](const std::string& name, int64_t in, int64_t out, Triple k, Triple s) {
    endpoints_.emplace_back(name, torch::nn::AnyModule(register_module(name, Unit3D(in, out, k, s, eps))));
  };
  auto pool = [&](const std::string& name, Triple k, Triple s) {
    endpoints_.emplace_back(name, torch::nn::AnyModule(register_module(name, MaxPoolSame(k, s))));
  };
  auto mixed = [&](const std::string& name, int64_t in, std::array<int64_t, 6> oc) {
    endpoints_.emplace_back(name, torch::nn::AnyModule(register_module(name, InceptionBlock(in, oc, eps))));
  };
  unit("Conv3d_1a_7x7", 3, 64, {7, 7, 7}, {2, 2, 2});
  pool("MaxPool3d_2a_3x3", {1, 3, 3}, {1, 2, 2});
  unit("Conv3d_2b_1x1", 64, 64, {1, 1, 1}, {1, 1, 1});
  unit("Conv3d_2c_3x3", 64, 192, {3, 3, 3}, {1, 1, 1});
  pool("MaxPool3d_3a_3x3", {1, 3, 3}, {1, 2, 2});
  mixed("Mixed_3b", 192, {64, 96, 128, 16, 32, 32});
  mixed("Mixed_3c", 256, {128, 128, 192, 32, 96, 64});
  pool("MaxPool3d_4a_3x3", {3, 3, 3}, {2, 2, 2});
  mixed("Mixed_4b", 480, {192, 96, 208, 16, 48, 64});
  mixed("Mixed_4c", 512, {160, 112, 224, 24, 64, 64});
  mixed("Mixed_4d", 512, {128, 128, 256, 24, 64, 64});
  mixed("Mixed_4e", 512, {112, 144, 288, 32, 64, 64});
  mixed("Mixed_4f", 528, {256, 160, 320, 32, 128, 128});
  pool("MaxPool3d_5a_2x2", {2, 2, 2}, {2, 2, 2});
  mixed("Mixed_5b", 832, {256, 160, 320, 32, 128, 128});
  mixed("Mixed_5c", 832, {384, 192, 384, 48, 128, 128});
}

at::Tensor InceptionI3dImpl::logits_over_time(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks) {
  if (x.dim() != 5 || x.size(1) != 3)
    fail("I3D: expected a video [B,3,T,H,W], got {}", c10::str(x.sizes()));
  at::Tensor h = x;
  for (auto& [name, m] : endpoints_) {
    h = m.forward(h);
    if (hooks) (*hooks)[name] = spatiotemporal_mean(h);
  }
  // h: Mixed_5c [B,1024,T',H',W'], T' = ceil(T/8), H' = ceil(H/32). The average pool
  // must leave a 1x1 map (the ports squeeze H, W) and at least one time step.
  const auto& k = opt_.final_pool;
  if (h.size(2) < k[0] || h.size(3) != k[1] || h.size(4) != k[2])
    fail("I3D: Mixed_5c is {} for input {}; the ({},{},{}) average pool needs T' >= {} and a {}x{} map "
         "(input T >= {}, {} < H, W <= {})",
         c10::str(h.sizes()), c10::str(x.sizes()), k[0], k[1], k[2], k[0], k[1], k[2], 8 * (k[0] - 1) + 1,
         32 * (k[1] - 1), 32 * k[1]);
  const at::Tensor pooled = at::avg_pool3d(h, k, {1, 1, 1});  // [B,1024,T'',1,1]
  if (hooks) (*hooks)["avg_pool"] = spatiotemporal_mean(pooled);
  // Dropout is the identity in eval mode.
  at::Tensor logits = logits_.forward(pooled).squeeze(4).squeeze(3);  // [B,400,T'']
  if (hooks) (*hooks)["logits"] = logits;
  return logits;
}

at::Tensor InceptionI3dImpl::forward(const at::Tensor& x) { return logits_over_time(x).mean(2); }  // [B,400]

InceptionI3d load_i3d(const io::StateDict& sd, const std::string& source, const I3DOptions& o) {
  InceptionI3d net(o);
  try {
    nn::load_weights(*net, align_num_batches_tracked(sd, *net));  // strict: every missing / unexpected / mis-shaped key named
  } catch (const std::exception&) {
    rethrow_with_context(source);
  }
  net->eval();
  return net;
}

// ---------------------------------------------------------------------------
// FvdDetector

struct FvdDetector::Impl {
  std::string source;
  InceptionI3d net{nullptr};          // state-dict path
  std::optional<torch::jit::Module> script;  // TorchScript path
  c10::Device device{c10::kCPU};
};

namespace {

// torch.jit.save archives carry code/ and constants.pkl next to data.pkl; a plain
// torch.save zip has only data.pkl, data/ and version.
bool is_torchscript_archive(const std::filesystem::path& file) {
  const io::BlobPtr blob = io::map_file(file);
  if (!io::looks_like_zip(blob->data(), blob->size())) return false;
  for (const auto& e : io::read_zip_directory(blob->data(), blob->size(), file.string())) {
    const std::string& n = e.name;
    const bool constants = n == "constants.pkl" || (n.size() > 14 && n.compare(n.size() - 14, 14, "/constants.pkl") == 0);
    if (constants || n.rfind("code/", 0) == 0 || n.find("/code/") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

FvdDetector::FvdDetector() : impl_(std::make_unique<Impl>()) {}
FvdDetector::FvdDetector(FvdDetector&&) noexcept = default;
FvdDetector& FvdDetector::operator=(FvdDetector&&) noexcept = default;
FvdDetector::~FvdDetector() = default;

FvdDetector FvdDetector::open(const std::filesystem::path& file, const I3DOptions& o) {
  if (!std::filesystem::is_regular_file(file)) fail_at(file.string(), "I3D weights not found");
  FvdDetector d;
  d.impl_->source = file.string();
  if (is_torchscript_archive(file)) {
    try {
      d.impl_->script = torch::jit::load(file.string(), c10::Device(c10::kCPU));
    } catch (const std::exception&) {
      rethrow_with_context(file.string());
    }
    d.impl_->script->eval();
  } else {
    d.impl_->net = load_i3d(io::StateDict(io::open_weights(file)), file.string(), o);
  }
  return d;
}

at::Tensor FvdDetector::features(const at::Tensor& videos) {
  if (videos.dim() != 5 || videos.size(1) != 3)
    fail_at(impl_->source, "FVD detector: expected videos [B,3,T,H,W], got {}", c10::str(videos.sizes()));
  torch::NoGradGuard no_grad;
  const at::Tensor x = videos.to(at::kFloat);
  // The network follows the clips' device (moved once).
  if (x.device() != impl_->device) {
    if (impl_->script)
      impl_->script->to(x.device());
    else
      impl_->net->to(x.device());
    impl_->device = x.device();
  }
  at::Tensor f;
  if (impl_->script) {
    try {
      // Called like StyleGAN-V calls it (keywords, so argument order does not matter): the
      // clips are already in [-1,1] at 224, and return_features gives the pre-softmax logits.
      f = impl_->script->get_method("forward")({x}, {{"rescale", false}, {"resize", false}, {"return_features", true}})
              .toTensor();
    } catch (const std::exception&) {
      rethrow_with_context(impl_->source);
    }
  } else {
    f = impl_->net->forward(x);
  }
  if (f.dim() != 2 || f.size(0) != videos.size(0))
    fail_at(impl_->source, "FVD detector returned {} for {} clips; expected [B,features]", c10::str(f.sizes()),
            videos.size(0));
  return f.to(at::kFloat);  // [B,400]
}

std::string FvdDetector::kind() const { return impl_->script ? "torchscript" : "state-dict"; }

}  // namespace hallo::eval::nets
