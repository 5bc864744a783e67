#pragma once
// I3D (Inception-v1 inflated to 3D) as the FVD detector: VideoGPT / piergiaj
// pytorch-i3d key layout (<Endpoint>.conv3d.weight, <Endpoint>.bn.*,
// Mixed_*.b0/b1a/b1b/b2a/b2b/b3b.*, logits.conv3d.{weight,bias}), TF "SAME"
// padding computed from the input size (also before max pooling, zeros), bias-free
// conv + BatchNorm + ReLU units. The BN eps and the final average pool are
// settings because the ports differ: VideoGPT eps 1e-5, piergiaj / DisCo / the TF
// original eps 1e-3; pool (2,7,7) (VideoGPT, TF) or (1,7,7) (DisCo).
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/io/state_dict.h"

namespace hallo::eval::nets {

struct I3DOptions {
  double bn_eps = 1e-5;
  std::array<int64_t, 3> final_pool{2, 7, 7};  // AvgPool3d kernel, stride 1, no padding
  int64_t num_classes = 400;
};

// TF "SAME" padding of one dimension as the PyTorch ports compute it from the input
// size: pad = max(k - s, 0) if size % s == 0 else max(k - size % s, 0), split
// {front = pad / 2, back = pad - front}. Used before every conv and max pool.
std::array<int64_t, 2> tf_same_padding(int64_t size, int64_t kernel, int64_t stride);

// Endpoint names in forward order (Conv3d_1a_7x7 ... Mixed_5c), the hook keys.
const std::vector<std::string>& i3d_endpoints();

class InceptionI3dImpl : public torch::nn::Module {
 public:
  explicit InceptionI3dImpl(I3DOptions o = {});

  // x: [B,3,T,H,W] RGB in [-1,1]. Returns the pre-softmax logits before the time
  // mean, [B,400,T''] (T'' = T' - final_pool[0] + 1). `hooks` (optional) receives
  // each endpoint's output averaged over T,H,W ([B,C]) under its endpoint name, plus
  // "avg_pool" and "logits" ([B,400,T'']).
  at::Tensor logits_over_time(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks = nullptr);
  // The FVD feature: logits_over_time(x).mean(2) -> [B,400].
  at::Tensor forward(const at::Tensor& x);

  const I3DOptions& options() const { return opt_; }

 private:
  I3DOptions opt_;
  // Registered children in forward order (Unit3D, max pool and Inception blocks are
  // private types of i3d.cpp); `logits_` is the 1x1x1 conv with bias.
  std::vector<std::pair<std::string, torch::nn::AnyModule>> endpoints_;
  torch::nn::AnyModule logits_;
};
TORCH_MODULE(InceptionI3d);

InceptionI3d load_i3d(const io::StateDict& sd, const std::string& source, const I3DOptions& o = {});

// The FVD detector behind one interface: InceptionI3d on a state-dict file
// (VideoGPT i3d_pretrained_400.pt, piergiaj rgb_imagenet.pt, .safetensors) or
// StyleGAN-V's TorchScript i3d_torchscript.pt through torch::jit::load, called as
// forward(x, rescale=False, resize=False, return_features=True).
class FvdDetector {
 public:
  // The format is detected from the file (TorchScript archives hold constants.pkl / code/).
  static FvdDetector open(const std::filesystem::path& file, const I3DOptions& o = {});
  FvdDetector(FvdDetector&&) noexcept;
  FvdDetector& operator=(FvdDetector&&) noexcept;
  ~FvdDetector();

  // videos: [B,3,T,224,224] float RGB in [-1,1] -> [B,400] float32, under no-grad.
  at::Tensor features(const at::Tensor& videos);
  std::string kind() const;  // "state-dict" or "torchscript"

 private:
  FvdDetector();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::eval::nets
