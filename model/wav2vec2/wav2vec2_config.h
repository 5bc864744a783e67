#pragma once
// Wav2Vec2Config: the subset of HF transformers' Wav2Vec2Config that shapes
// the network. Read from the checkpoint's config.json; training-only fields
// (masking, dropout, CTC) are ignored because inference never uses them.
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hallo::model {

struct Wav2Vec2Config {
  std::vector<int64_t> conv_dim{512, 512, 512, 512, 512, 512, 512};
  std::vector<int64_t> conv_kernel{10, 3, 3, 3, 3, 2, 2};
  std::vector<int64_t> conv_stride{5, 2, 2, 2, 2, 2, 2};
  bool conv_bias = false;
  std::string feat_extract_norm = "group";  // only "group" (wav2vec2-base) is supported
  bool do_stable_layer_norm = false;        // only post-LN (wav2vec2-base) is supported
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_attention_heads = 12;
  int64_t num_hidden_layers = 12;
  int64_t num_conv_pos_embeddings = 128;
  int64_t num_conv_pos_embedding_groups = 16;
  double layer_norm_eps = 1e-5;
  // HF creates masked_spec_embed only when training-time masking is configured
  // (mask_time_prob > 0 or mask_feature_prob > 0; HF's default mask_time_prob is 0.05).
  bool has_masked_spec_embed = true;

  // facebook/wav2vec2-base-960h, the encoder Hallo ships with.
  static Wav2Vec2Config base();
  static Wav2Vec2Config from_json(const nlohmann::json& j, const std::string& where);
  static Wav2Vec2Config from_file(const std::string& path);
  void validate(const std::string& where) const;

  // Samples consumed per CNN output frame (320 for base: ~50 Hz at 16 kHz).
  int64_t total_stride() const;
  // CNN output frames for `samples` input samples (HF _get_feat_extract_output_lengths).
  int64_t feature_frames(int64_t samples) const;
  int64_t last_conv_dim() const { return conv_dim.back(); }
};

}  // namespace hallo::model
