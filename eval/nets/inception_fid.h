#pragma once
// pytorch-fid's InceptionV3 (the FID network): torchvision Inception3 names
// (Conv2d_1a_3x3.conv/.bn, Mixed_5b.branch1x1, ..., fc 2048->1008 kept but unused)
// with the FID blocks (A/C/E_1 pool branches avg-pool count_include_pad=False,
// Mixed_7c's pool branch a max-pool), bias-free convs, BatchNorm eps 1e-3, ReLU.
// Loads pt_inception-2015-12-05-6726825d.pth (torch pickle) name for name.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/io/state_dict.h"

namespace hallo::eval::nets {

// The Inception units, defined in inception_fid.cpp (only the network is public).
namespace fid {
class BasicConv2dImpl;
class InceptionAImpl;
class InceptionBImpl;
class InceptionCImpl;
class InceptionDImpl;
class InceptionEImpl;
}  // namespace fid

class FidInceptionV3Impl : public torch::nn::Module {
 public:
  FidInceptionV3Impl();

  // x: [N,3,H,W] float RGB in [0,1] (ToTensor of the frames). Resized to 299x299
  // (bilinear, align_corners=false, no antialias) and mapped to [-1,1] like
  // pytorch-fid's InceptionV3(resize_input, normalize_input). Returns, for each
  // requested dim in {64, 192, 768, 2048}, the block output average-pooled to [N,dim].
  std::map<int, at::Tensor> features(const at::Tensor& x, const std::vector<int>& dims = {2048});
  // Same, and when `hooks` is given it receives "blocks.0.input" (the resized, normalised
  // input [N,3,299,299]) and "blocks.<i>.output" of every block that ran (before pooling).
  std::map<int, at::Tensor> features(const at::Tensor& x, const std::vector<int>& dims,
                                     std::map<std::string, at::Tensor>* hooks);
  at::Tensor forward(const at::Tensor& x);  // features(x, {2048})[2048]

  // pytorch-fid's BLOCK_INDEX_BY_DIM: 64 -> 0, 192 -> 1, 768 -> 2, 2048 -> 3; throws otherwise.
  static int block_index(int dim);

 private:
  std::shared_ptr<fid::BasicConv2dImpl> Conv2d_1a_3x3, Conv2d_2a_3x3, Conv2d_2b_3x3, Conv2d_3b_1x1, Conv2d_4a_3x3;
  std::shared_ptr<fid::InceptionAImpl> Mixed_5b, Mixed_5c, Mixed_5d;
  std::shared_ptr<fid::InceptionBImpl> Mixed_6a;
  std::shared_ptr<fid::InceptionCImpl> Mixed_6b, Mixed_6c, Mixed_6d, Mixed_6e;
  std::shared_ptr<fid::InceptionDImpl> Mixed_7a;
  std::shared_ptr<fid::InceptionEImpl> Mixed_7b, Mixed_7c;
};
TORCH_MODULE(FidInceptionV3);

// Strict load (every key named on mismatch), eval mode, no grad.
FidInceptionV3 load_fid_inception(const io::StateDict& sd, const std::string& source);
FidInceptionV3 load_fid_inception(const std::filesystem::path& weights);  // .pth (pickle) or .safetensors

// FID features of RGB frames: frames_u8 [N,H,W,3] uint8 -> [N,2048] float32, run in
// batches of `batch` under no-grad.
at::Tensor fid_features(FidInceptionV3Impl& net, const at::Tensor& frames_u8, int64_t batch = 32);

}  // namespace hallo::eval::nets
