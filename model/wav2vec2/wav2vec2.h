#pragma once
// Wav2Vec2Model (HF transformers layout, post-LN wav2vec2-base) with the
// forward split the way Hallo uses it: CNN features, then (after Hallo's
// resampling to the video frame rate) projection + transformer encoder.
// Keys: masked_spec_embed, feature_extractor.conv_layers.{i}.conv /.layer_norm,
// feature_projection.{layer_norm,projection}, encoder.pos_conv_embed.conv
// (weight_g, weight_v, bias), encoder.layer_norm, encoder.layers.{i}.*.
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <filesystem>
#include <string>
#include <vector>

#include "model/nn/loader.h"
#include "model/wav2vec2/wav2vec2_config.h"

namespace hallo::model {

class Wav2Vec2ConvLayerImpl : public torch::nn::Module {
 public:
  Wav2Vec2ConvLayerImpl(const Wav2Vec2Config& c, size_t i);
  at::Tensor forward(const at::Tensor& x);  // [B, Cin, T] -> [B, Cout, T']
  torch::nn::Conv1d conv{nullptr};
  torch::nn::GroupNorm layer_norm{nullptr};  // layer 0 only (group-norm extractor)
};
TORCH_MODULE(Wav2Vec2ConvLayer);

class Wav2Vec2FeatureEncoderImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2FeatureEncoderImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& input_values);  // [B, S] -> [B, C, T]
  torch::nn::ModuleList conv_layers{nullptr};
};
TORCH_MODULE(Wav2Vec2FeatureEncoder);

class Wav2Vec2FeatureProjectionImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2FeatureProjectionImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& x);  // [B, T, C] -> [B, T, hidden]
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::Linear projection{nullptr};
};
TORCH_MODULE(Wav2Vec2FeatureProjection);

// Grouped conv whose weight is weight-normalised over dim 2 (torch weight_norm(dim=2)):
// weight = weight_g * weight_v / ||weight_v|| with the norm taken per kernel tap.
class WeightNormConv1dImpl : public torch::nn::Module {
 public:
  WeightNormConv1dImpl(int64_t channels, int64_t kernel, int64_t groups);
  at::Tensor forward(const at::Tensor& x);  // [B, C, T] -> [B, C, T + 1 - kernel % 2]
  at::Tensor weight_g, weight_v, bias;
  int64_t kernel, groups;
};
TORCH_MODULE(WeightNormConv1d);

class Wav2Vec2PositionalConvEmbeddingImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2PositionalConvEmbeddingImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& x);  // [B, T, C] -> [B, T, C]
  WeightNormConv1d conv{nullptr};
};
TORCH_MODULE(Wav2Vec2PositionalConvEmbedding);

class Wav2Vec2AttentionImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2AttentionImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& x);  // [B, T, C] -> [B, T, C]
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  int64_t heads;
};
TORCH_MODULE(Wav2Vec2Attention);

class Wav2Vec2FeedForwardImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2FeedForwardImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear intermediate_dense{nullptr}, output_dense{nullptr};
};
TORCH_MODULE(Wav2Vec2FeedForward);

class Wav2Vec2EncoderLayerImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2EncoderLayerImpl(const Wav2Vec2Config& c);
  at::Tensor forward(const at::Tensor& x);  // post-LN: LN(x + attn(x)), LN(h + ff(h))
  Wav2Vec2Attention attention{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  Wav2Vec2FeedForward feed_forward{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(Wav2Vec2EncoderLayer);

class Wav2Vec2EncoderImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2EncoderImpl(const Wav2Vec2Config& c);
  // hidden_states[0] = LN(x + pos_conv(x)), hidden_states[k] = output of layer k.
  std::vector<at::Tensor> forward(const at::Tensor& x);  // [B, T, C] -> (layers + 1) x [B, T, C]
  Wav2Vec2PositionalConvEmbedding pos_conv_embed{nullptr};
  torch::nn::LayerNorm layer_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Wav2Vec2Encoder);

class Wav2Vec2ModelImpl : public torch::nn::Module {
 public:
  explicit Wav2Vec2ModelImpl(const Wav2Vec2Config& c);
  const Wav2Vec2Config& config() const { return cfg_; }

  // input_values: [B, S] normalised waveform -> CNN features [B, T, conv_dim[-1]].
  at::Tensor extract_features(const at::Tensor& input_values);
  // features [B, N, conv_dim[-1]] (possibly resampled to N frames) -> hidden states,
  // (num_hidden_layers + 1) x [B, N, hidden].
  std::vector<at::Tensor> encode(const at::Tensor& features);

  Wav2Vec2FeatureEncoder feature_extractor{nullptr};
  Wav2Vec2FeatureProjection feature_projection{nullptr};
  Wav2Vec2Encoder encoder{nullptr};
  at::Tensor masked_spec_embed;  // training-time masking vector (when configured); loaded, unused at inference

 private:
  Wav2Vec2Config cfg_;
};
TORCH_MODULE(Wav2Vec2Model);

// Maps a checkpoint key to our module name: strips the `wav2vec2.` prefix of
// Wav2Vec2ForCTC / ForPreTraining checkpoints, drops their heads (lm_head,
// quantizer, project_q, project_hid), and maps the torch>=2.1 weight-norm
// parametrization names (original0/1) to weight_g/weight_v. Empty = drop.
std::string wav2vec2_translate_key(const std::string& key);

// Loads a wav2vec2 checkpoint: a HF folder (config.json + model.safetensors or
// pytorch_model.bin) or a single weights file plus an explicit config path.
struct LoadedWav2Vec2 {
  Wav2Vec2Model model{nullptr};
  nn::LoadReport report;
};
LoadedWav2Vec2 load_wav2vec2(const std::filesystem::path& weights, const std::filesystem::path& config = {},
                             bool strict = true);

}  // namespace hallo::model
