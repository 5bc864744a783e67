#include "eval/nets/syncnet.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/pooling.h>

#include "core/error.h"
#include "eval/nets/frozen_bn.h"
#include "model/io/weights.h"
#include "model/nn/loader.h"

// SyncNetModel.S of syncnet_python. The four nn.Sequential stacks keep upstream's
// indices (ReLU / MaxPool occupy an index each), so the parameter names are
// syncnet_v2.model's keys as they are.
namespace hallo::eval::nets {

namespace {

namespace tnn = torch::nn;

// BatchNorm as in the 2017 file: eps 1e-5, no num_batches_tracked.
FrozenBatchNorm bn(int64_t c) { return FrozenBatchNorm(c, 1e-5, /*with_num_batches_tracked=*/false); }

tnn::Conv2d conv2d(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> pad) {
  return tnn::Conv2d(tnn::Conv2dOptions(in, out, k).padding(pad));
}

tnn::Conv3d conv3d(int64_t in, int64_t out, std::vector<int64_t> k, std::vector<int64_t> stride,
                   std::vector<int64_t> pad) {
  return tnn::Conv3d(tnn::Conv3dOptions(in, out, k).stride(stride).padding(pad));
}

tnn::MaxPool3d maxpool3d(std::vector<int64_t> pad) {
  return tnn::MaxPool3d(tnn::MaxPool3dOptions({1, 3, 3}).stride({1, 2, 2}).padding(pad));
}

// Audio tower on [N,1,13,20]: 0-3 conv/bn/relu/pool(1x1), 4-7 .. pool 3x3 s(1,2),
// 8-10, 11-13, 14-17 .. pool 3x3 s2, 18-20 conv (5,4) -> [N,512,1,1].
tnn::Sequential audio_cnn() {
  return tnn::Sequential(
      conv2d(1, 64, {3, 3}, {1, 1}), bn(64), tnn::ReLU(), tnn::MaxPool2d(tnn::MaxPool2dOptions({1, 1}).stride({1, 1})),
      conv2d(64, 192, {3, 3}, {1, 1}), bn(192), tnn::ReLU(), tnn::MaxPool2d(tnn::MaxPool2dOptions({3, 3}).stride({1, 2})),
      conv2d(192, 384, {3, 3}, {1, 1}), bn(384), tnn::ReLU(),
      conv2d(384, 256, {3, 3}, {1, 1}), bn(256), tnn::ReLU(),
      conv2d(256, 256, {3, 3}, {1, 1}), bn(256), tnn::ReLU(), tnn::MaxPool2d(tnn::MaxPool2dOptions({3, 3}).stride({2, 2})),
      conv2d(256, 512, {5, 4}, {0, 0}), bn(512), tnn::ReLU());
}

// Lip tower on [N,3,5,224,224]: conv (5,7,7) s(1,2,2) collapses the 5 frames, then
// 2-D-like (1,k,k) convs down to [N,512,1,1,1].
tnn::Sequential lip_cnn() {
  return tnn::Sequential(
      conv3d(3, 96, {5, 7, 7}, {1, 2, 2}, {0, 0, 0}), bn(96), tnn::ReLU(), maxpool3d({0, 0, 0}),
      conv3d(96, 256, {1, 5, 5}, {1, 2, 2}, {0, 1, 1}), bn(256), tnn::ReLU(), maxpool3d({0, 1, 1}),
      conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}), bn(256), tnn::ReLU(),
      conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}), bn(256), tnn::ReLU(),
      conv3d(256, 256, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}), bn(256), tnn::ReLU(), maxpool3d({0, 0, 0}),
      conv3d(256, 512, {1, 6, 6}, {1, 1, 1}, {0, 0, 0}), bn(512), tnn::ReLU());
}

// 512 -> 512 (BN1d, ReLU) -> embedding.
tnn::Sequential fc(int64_t out) {
  return tnn::Sequential(tnn::Linear(512, 512), bn(512), tnn::ReLU(), tnn::Linear(512, out));
}

// Runs `seq` layer by layer; with `hooks`, records "<name>.<i>" = layer i's output,
// averaged over every position after the channel dim when `average` ([N,C]).
at::Tensor run(tnn::Sequential& seq, at::Tensor x, const char* name, bool average,
               std::map<std::string, at::Tensor>* hooks) {
  if (!hooks) return seq->forward(x);
  size_t i = 0;
  for (auto& layer : *seq) {
    x = layer.forward(x);
    at::Tensor h = x;
    if (average && x.dim() > 2) h = x.flatten(2).mean(2);
    (*hooks)[std::string(name) + "." + std::to_string(i++)] = h.clone();
  }
  return x;
}

}  // namespace

SyncNetImpl::SyncNetImpl(int64_t num_layers_in_fc_layers) {
  // Registration order = upstream's state_dict order.
  netcnnaud = register_module("netcnnaud", audio_cnn());
  netfcaud = register_module("netfcaud", fc(num_layers_in_fc_layers));
  netfclip = register_module("netfclip", fc(num_layers_in_fc_layers));
  netcnnlip = register_module("netcnnlip", lip_cnn());
}

at::Tensor SyncNetImpl::forward_aud(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks) {
  const at::Tensor mid = run(netcnnaud, x, "netcnnaud", true, hooks);          // [N,512,1,1]
  return run(netfcaud, mid.reshape({mid.size(0), -1}), "netfcaud", false, hooks);  // [N,1024]
}

at::Tensor SyncNetImpl::forward_lip(const at::Tensor& x, std::map<std::string, at::Tensor>* hooks) {
  const at::Tensor mid = run(netcnnlip, x, "netcnnlip", true, hooks);          // [N,512,1,1,1]
  return run(netfclip, mid.reshape({mid.size(0), -1}), "netfclip", false, hooks);  // [N,1024]
}

at::Tensor SyncNetImpl::forward_lipfeat(const at::Tensor& x) {
  const at::Tensor mid = netcnnlip->forward(x);  // [N,512,1,1,1]
  return mid.reshape({mid.size(0), -1});         // [N,512]
}

SyncNet load_syncnet(const io::StateDict& sd, const std::string& source) {
  SyncNet net;
  try {
    nn::load_weights(*net, align_num_batches_tracked(sd, *net));  // strict: every other key, every shape
  } catch (const Error&) {
    rethrow_with_context(source);
  }
  net->eval();
  return net;
}

SyncNet load_syncnet(const std::filesystem::path& weights) {
  return load_syncnet(io::StateDict(io::open_weights(weights)), weights.string());
}

}  // namespace hallo::eval::nets
