#include "model/hallo/face_locator.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

namespace tnn = torch::nn;

FaceLocatorConfig FaceLocatorConfig::hallo() { return FaceLocatorConfig{}; }

FaceLocatorConfig FaceLocatorConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  if (f.has("_class_name") && f.get<std::string>("_class_name") != "FaceLocator")
    fail_at(where, "field '_class_name' is '{}', expected 'FaceLocator'", f.get<std::string>("_class_name"));
  for (const auto& k : f.unknown_keys({"conditioning_embedding_channels", "conditioning_channels", "block_out_channels"}))
    fail_at(where, "unknown FaceLocator field '{}'", k);
  FaceLocatorConfig c;
  c.conditioning_embedding_channels = f.get<int64_t>("conditioning_embedding_channels");
  c.conditioning_channels = f.get_or<int64_t>("conditioning_channels", c.conditioning_channels);
  c.block_out_channels = f.get_or<std::vector<int64_t>>("block_out_channels", c.block_out_channels);
  c.validate(where);
  return c;
}

void FaceLocatorConfig::validate(const std::string& where) const {
  if (conditioning_embedding_channels <= 0)
    fail_at(where, "field 'conditioning_embedding_channels' must be positive, got {}", conditioning_embedding_channels);
  if (conditioning_channels <= 0) fail_at(where, "field 'conditioning_channels' must be positive, got {}", conditioning_channels);
  if (block_out_channels.empty()) fail_at(where, "field 'block_out_channels' must not be empty");
  for (auto ch : block_out_channels)
    if (ch <= 0) fail_at(where, "field 'block_out_channels' has a non-positive entry {}", ch);
}

int64_t FaceLocatorConfig::downscale_factor() const { return int64_t{1} << (block_out_channels.size() - 1); }

namespace {
tnn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return tnn::Conv2d(tnn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

// [B*F, C, H, W] -> [B, C, F, H, W] (a view, as upstream's rearrange)
at::Tensor unfold_frames(const at::Tensor& x, int64_t b, int64_t f) {
  return x.reshape({b, f, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}
}  // namespace

FaceLocatorImpl::FaceLocatorImpl(const FaceLocatorConfig& c) : cfg_(c) {
  cfg_.validate("FaceLocatorConfig");
  const auto& ch = cfg_.block_out_channels;
  conv_in = register_module("conv_in", conv3x3(cfg_.conditioning_channels, ch[0], 1));
  blocks = register_module("blocks", tnn::ModuleList());
  for (size_t i = 0; i + 1 < ch.size(); ++i) {
    block_convs_.push_back(conv3x3(ch[i], ch[i], 1));
    block_convs_.push_back(conv3x3(ch[i], ch[i + 1], 2));
  }
  for (auto& m : block_convs_) blocks->push_back(m);
  // Zero-initialised upstream (zero_module); checkpoints always overwrite it.
  conv_out = register_module("conv_out", conv3x3(ch.back(), cfg_.conditioning_embedding_channels, 1));
}

at::Tensor FaceLocatorImpl::forward(const at::Tensor& conditioning, std::map<std::string, at::Tensor>* hooks) {
  if (conditioning.dim() != 5)
    fail_at("FaceLocator", "expected a [B, C, F, H, W] video, got shape {}", c10::str(conditioning.sizes()));
  if (conditioning.size(1) != cfg_.conditioning_channels)
    fail_at("FaceLocator", "input has {} channels (dim 1 of {}), config conditioning_channels is {}", conditioning.size(1),
            c10::str(conditioning.sizes()), cfg_.conditioning_channels);
  const int64_t b = conditioning.size(0), f = conditioning.size(2);
  // InflatedConv3d folds frames into the batch around every conv; folding once
  // for the whole stack computes the same per-frame 2-D convolutions.
  at::Tensor x = conditioning.permute({0, 2, 1, 3, 4}).reshape({b * f, conditioning.size(1), conditioning.size(3),
                                                               conditioning.size(4)});  // [B*F, C, H, W]
  auto record = [&](const std::string& name, const at::Tensor& t) {
    if (hooks) (*hooks)[name] = unfold_frames(t, b, f);
  };
  x = conv_in->forward(x);  // [B*F, c0, H, W]
  record("conv_in", x);
  x = at::silu(x);
  for (size_t i = 0; i < block_convs_.size(); ++i) {
    x = block_convs_[i]->forward(x);  // odd i: stride 2, [B*F, c_{k+1}, ceil(H'/2), ceil(W'/2)]
    record("blocks." + std::to_string(i), x);
    x = at::silu(x);
  }
  x = conv_out->forward(x);  // [B*F, Cout, h, w]
  record("conv_out", x);
  return unfold_frames(x, b, f);  // [B, Cout, F, h, w]
}

}  // namespace hallo::model
