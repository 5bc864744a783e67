#pragma once
// Hallo AudioProjModel: each video frame's wav2vec2 window (seq_len frames x
// blocks layers x channels) is flattened and mapped by a 3-layer MLP to
// context_tokens audio tokens of output_dim, then LayerNorm.
// Keys: proj1, proj2, proj3, norm.
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

namespace hallo::model {

struct AudioProjConfig {
  // Upstream constructor defaults, which are also Hallo's values.
  int64_t seq_len = 5;             // window of frames i-2..i+2
  int64_t blocks = 12;             // wav2vec2 layers kept
  int64_t channels = 768;          // wav2vec2 hidden size
  int64_t intermediate_dim = 512;
  int64_t output_dim = 768;        // the UNet's cross_attention_dim
  int64_t context_tokens = 32;

  static AudioProjConfig hallo();
  static AudioProjConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
  int64_t input_dim() const { return seq_len * blocks * channels; }
};

class AudioProjModelImpl : public torch::nn::Module {
 public:
  explicit AudioProjModelImpl(const AudioProjConfig& c);
  // audio_embeds: [B, F, seq_len, blocks, channels] -> [B, F, context_tokens, output_dim].
  at::Tensor forward(const at::Tensor& audio_embeds);
  const AudioProjConfig& config() const { return cfg_; }

  torch::nn::Linear proj1{nullptr}, proj2{nullptr}, proj3{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  AudioProjConfig cfg_;
};
TORCH_MODULE(AudioProjModel);

}  // namespace hallo::model
