#include "model/wav2vec2/wav2vec2.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "model/io/state_dict.h"
#include "model/nn/attention_kernel.h"

namespace hallo::model {

namespace tnn = torch::nn;

Wav2Vec2ConvLayerImpl::Wav2Vec2ConvLayerImpl(const Wav2Vec2Config& c, size_t i) {
  const int64_t cin = i == 0 ? 1 : c.conv_dim[i - 1];
  conv = register_module(
      "conv", tnn::Conv1d(tnn::Conv1dOptions(cin, c.conv_dim[i], c.conv_kernel[i]).stride(c.conv_stride[i]).bias(c.conv_bias)));
  // Group-norm extractor: one GroupNorm with a group per channel, first layer only.
  if (i == 0)
    layer_norm = register_module("layer_norm",
                                 tnn::GroupNorm(tnn::GroupNormOptions(c.conv_dim[0], c.conv_dim[0]).eps(1e-5).affine(true)));
}

at::Tensor Wav2Vec2ConvLayerImpl::forward(const at::Tensor& x) {
  auto h = conv->forward(x);  // [B, Cout, T']
  if (layer_norm) h = layer_norm->forward(h);
  return at::gelu(h);
}

Wav2Vec2FeatureEncoderImpl::Wav2Vec2FeatureEncoderImpl(const Wav2Vec2Config& c) {
  conv_layers = register_module("conv_layers", tnn::ModuleList());
  for (size_t i = 0; i < c.conv_dim.size(); ++i) conv_layers->push_back(Wav2Vec2ConvLayer(c, i));
}

at::Tensor Wav2Vec2FeatureEncoderImpl::forward(const at::Tensor& input_values) {
  auto h = input_values.unsqueeze(1);  // [B, 1, S]
  for (const auto& m : *conv_layers) h = m->as<Wav2Vec2ConvLayerImpl>()->forward(h);
  return h;  // [B, C, T]
}

Wav2Vec2FeatureProjectionImpl::Wav2Vec2FeatureProjectionImpl(const Wav2Vec2Config& c) {
  layer_norm = register_module("layer_norm", tnn::LayerNorm(tnn::LayerNormOptions({c.last_conv_dim()}).eps(c.layer_norm_eps)));
  projection = register_module("projection", tnn::Linear(c.last_conv_dim(), c.hidden_size));
}

at::Tensor Wav2Vec2FeatureProjectionImpl::forward(const at::Tensor& x) {
  return projection->forward(layer_norm->forward(x));  // [B, T, hidden]
}

WeightNormConv1dImpl::WeightNormConv1dImpl(int64_t channels, int64_t kernel_, int64_t groups_)
    : kernel(kernel_), groups(groups_) {
  weight_g = register_parameter("weight_g", at::ones({1, 1, kernel}));
  weight_v = register_parameter("weight_v", at::randn({channels, channels / groups, kernel}) * 0.02);
  bias = register_parameter("bias", at::zeros({channels}));
}

at::Tensor WeightNormConv1dImpl::forward(const at::Tensor& x) {
  // torch weight_norm(dim=2): the norm runs over every dim except the kernel tap.
  auto norm = weight_v.pow(2).sum(at::IntArrayRef{0, 1}, /*keepdim=*/true).sqrt();  // [1, 1, K]
  auto w = weight_v * (weight_g / norm);
  return at::conv1d(x, w, bias, {1}, {kernel / 2}, {1}, groups);
}

Wav2Vec2PositionalConvEmbeddingImpl::Wav2Vec2PositionalConvEmbeddingImpl(const Wav2Vec2Config& c) {
  conv = register_module("conv", WeightNormConv1d(c.hidden_size, c.num_conv_pos_embeddings, c.num_conv_pos_embedding_groups));
}

at::Tensor Wav2Vec2PositionalConvEmbeddingImpl::forward(const at::Tensor& x) {
  const int64_t t = x.size(1);
  auto h = conv->forward(x.transpose(1, 2));  // [B, C, T (+1 for even kernels)]
  // "Same" padding for an even kernel yields one extra step; HF drops the last one.
  if (h.size(2) > t) h = h.narrow(2, 0, t);
  return at::gelu(h).transpose(1, 2);  // [B, T, C]
}

Wav2Vec2AttentionImpl::Wav2Vec2AttentionImpl(const Wav2Vec2Config& c) : heads(c.num_attention_heads) {
  q_proj = register_module("q_proj", tnn::Linear(c.hidden_size, c.hidden_size));
  k_proj = register_module("k_proj", tnn::Linear(c.hidden_size, c.hidden_size));
  v_proj = register_module("v_proj", tnn::Linear(c.hidden_size, c.hidden_size));
  out_proj = register_module("out_proj", tnn::Linear(c.hidden_size, c.hidden_size));
}

at::Tensor Wav2Vec2AttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(1), c = x.size(2), d = c / heads;
  auto split = [&](const at::Tensor& y) {  // [B, T, C] -> [B*H, T, d]
    return y.view({b, t, heads, d}).transpose(1, 2).reshape({b * heads, t, d});
  };
  auto o = nn::attention(split(q_proj->forward(x)), split(k_proj->forward(x)), split(v_proj->forward(x)));
  o = o.view({b, heads, t, d}).transpose(1, 2).reshape({b, t, c});  // [B, T, C]
  return out_proj->forward(o);
}

Wav2Vec2FeedForwardImpl::Wav2Vec2FeedForwardImpl(const Wav2Vec2Config& c) {
  intermediate_dense = register_module("intermediate_dense", tnn::Linear(c.hidden_size, c.intermediate_size));
  output_dense = register_module("output_dense", tnn::Linear(c.intermediate_size, c.hidden_size));
}

at::Tensor Wav2Vec2FeedForwardImpl::forward(const at::Tensor& x) {
  return output_dense->forward(at::gelu(intermediate_dense->forward(x)));
}

Wav2Vec2EncoderLayerImpl::Wav2Vec2EncoderLayerImpl(const Wav2Vec2Config& c) {
  attention = register_module("attention", Wav2Vec2Attention(c));
  layer_norm = register_module("layer_norm", tnn::LayerNorm(tnn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  feed_forward = register_module("feed_forward", Wav2Vec2FeedForward(c));
  final_layer_norm =
      register_module("final_layer_norm", tnn::LayerNorm(tnn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

at::Tensor Wav2Vec2EncoderLayerImpl::forward(const at::Tensor& x) {
  auto h = layer_norm->forward(x + attention->forward(x));
  return final_layer_norm->forward(h + feed_forward->forward(h));
}

Wav2Vec2EncoderImpl::Wav2Vec2EncoderImpl(const Wav2Vec2Config& c) {
  pos_conv_embed = register_module("pos_conv_embed", Wav2Vec2PositionalConvEmbedding(c));
  layer_norm = register_module("layer_norm", tnn::LayerNorm(tnn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  layers = register_module("layers", tnn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Wav2Vec2EncoderLayer(c));
}

std::vector<at::Tensor> Wav2Vec2EncoderImpl::forward(const at::Tensor& x) {
  std::vector<at::Tensor> hs;
  hs.reserve(layers->size() + 1);
  auto h = layer_norm->forward(x + pos_conv_embed->forward(x));  // [B, T, C]
  hs.push_back(h);
  for (const auto& m : *layers) {
    h = m->as<Wav2Vec2EncoderLayerImpl>()->forward(h);
    hs.push_back(h);
  }
  return hs;
}

Wav2Vec2ModelImpl::Wav2Vec2ModelImpl(const Wav2Vec2Config& c) : cfg_(c) {
  cfg_.validate("Wav2Vec2Config");
  feature_extractor = register_module("feature_extractor", Wav2Vec2FeatureEncoder(cfg_));
  feature_projection = register_module("feature_projection", Wav2Vec2FeatureProjection(cfg_));
  encoder = register_module("encoder", Wav2Vec2Encoder(cfg_));
  if (cfg_.has_masked_spec_embed)
    masked_spec_embed = register_parameter("masked_spec_embed", at::zeros({cfg_.hidden_size}), /*requires_grad=*/false);
}

at::Tensor Wav2Vec2ModelImpl::extract_features(const at::Tensor& input_values) {
  if (input_values.dim() != 2)
    fail_at("Wav2Vec2Model", "expected input_values [B, samples], got shape {}", c10::str(input_values.sizes()));
  const int64_t need = cfg_.feature_frames(input_values.size(1));
  if (need < 1)
    fail_at("Wav2Vec2Model", "{} samples are too few for the feature extractor (receptive field {})",
            input_values.size(1), cfg_.conv_kernel[0]);
  return feature_extractor->forward(input_values).transpose(1, 2);  // [B, T, C]
}

std::vector<at::Tensor> Wav2Vec2ModelImpl::encode(const at::Tensor& features) {
  if (features.dim() != 3 || features.size(2) != cfg_.last_conv_dim())
    fail_at("Wav2Vec2Model", "expected features [B, N, {}], got shape {}", cfg_.last_conv_dim(),
            c10::str(features.sizes()));
  return encoder->forward(feature_projection->forward(features));
}

std::string wav2vec2_translate_key(const std::string& key) {
  std::string k = key;
  static const std::string prefix = "wav2vec2.";
  if (k.rfind(prefix, 0) == 0) k = k.substr(prefix.size());
  for (const char* head : {"lm_head.", "quantizer.", "project_q.", "project_hid.", "dropout_features."})
    if (k.rfind(head, 0) == 0) return {};
  static const std::string pc = "encoder.pos_conv_embed.conv.parametrizations.weight.";
  if (k == pc + "original0") return "encoder.pos_conv_embed.conv.weight_g";
  if (k == pc + "original1") return "encoder.pos_conv_embed.conv.weight_v";
  return k;
}

LoadedWav2Vec2 load_wav2vec2(const std::filesystem::path& weights, const std::filesystem::path& config, bool strict) {
  if (!std::filesystem::exists(weights)) fail_at(weights.string(), "no such wav2vec2 checkpoint file or folder");
  std::filesystem::path cfg_path = config;
  if (cfg_path.empty()) {
    if (std::filesystem::is_directory(weights))
      cfg_path = weights / "config.json";
    else
      cfg_path = weights.parent_path() / "config.json";
  }
  if (!std::filesystem::exists(cfg_path))
    fail_at(cfg_path.string(), "no such file (a wav2vec2 checkpoint needs its HF config.json)");
  LoadedWav2Vec2 out;
  out.model = Wav2Vec2Model(Wav2Vec2Config::from_file(cfg_path.string()));
  auto sd = io::StateDict::open(weights);
  nn::LoadOptions opts;
  opts.strict = strict;
  opts.rename = wav2vec2_translate_key;
  out.report = nn::load_weights(*out.model, sd, opts);
  out.report.source = weights.string();
  out.model->eval();
  return out;
}

}  // namespace hallo::model
