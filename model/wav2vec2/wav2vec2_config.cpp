#include "model/wav2vec2/wav2vec2_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

Wav2Vec2Config Wav2Vec2Config::base() { return Wav2Vec2Config{}; }

Wav2Vec2Config Wav2Vec2Config::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  if (f.has("model_type") && f.get<std::string>("model_type") != "wav2vec2")
    fail_at(where, "field 'model_type' is '{}', expected 'wav2vec2'", f.get<std::string>("model_type"));
  Wav2Vec2Config c;
  c.conv_dim = f.get_or<std::vector<int64_t>>("conv_dim", c.conv_dim);
  c.conv_kernel = f.get_or<std::vector<int64_t>>("conv_kernel", c.conv_kernel);
  c.conv_stride = f.get_or<std::vector<int64_t>>("conv_stride", c.conv_stride);
  c.conv_bias = f.get_or<bool>("conv_bias", c.conv_bias);
  c.feat_extract_norm = f.get_or<std::string>("feat_extract_norm", c.feat_extract_norm);
  c.do_stable_layer_norm = f.get_or<bool>("do_stable_layer_norm", c.do_stable_layer_norm);
  c.hidden_size = f.get_or<int64_t>("hidden_size", c.hidden_size);
  c.intermediate_size = f.get_or<int64_t>("intermediate_size", c.intermediate_size);
  c.num_attention_heads = f.get_or<int64_t>("num_attention_heads", c.num_attention_heads);
  c.num_hidden_layers = f.get_or<int64_t>("num_hidden_layers", c.num_hidden_layers);
  c.num_conv_pos_embeddings = f.get_or<int64_t>("num_conv_pos_embeddings", c.num_conv_pos_embeddings);
  c.num_conv_pos_embedding_groups =
      f.get_or<int64_t>("num_conv_pos_embedding_groups", c.num_conv_pos_embedding_groups);
  c.layer_norm_eps = f.get_or<double>("layer_norm_eps", c.layer_norm_eps);
  c.has_masked_spec_embed =
      f.get_or<double>("mask_time_prob", 0.05) > 0.0 || f.get_or<double>("mask_feature_prob", 0.0) > 0.0;
  if (f.has("num_feat_extract_layers") &&
      f.get<int64_t>("num_feat_extract_layers") != static_cast<int64_t>(c.conv_dim.size()))
    fail_at(where, "field 'num_feat_extract_layers' is {} but conv_dim has {} entries",
            f.get<int64_t>("num_feat_extract_layers"), c.conv_dim.size());
  // Activations are fixed to exact GELU in our implementation; anything else is refused by name.
  for (const char* act : {"hidden_act", "feat_extract_activation"})
    if (f.has(act) && f.get<std::string>(act) != "gelu")
      fail_at(where, "field '{}' is '{}', only 'gelu' is supported", act, f.get<std::string>(act));
  c.validate(where);
  return c;
}

Wav2Vec2Config Wav2Vec2Config::from_file(const std::string& path) {
  return from_json(io::load_json_file(path), path);
}

void Wav2Vec2Config::validate(const std::string& where) const {
  if (conv_dim.empty() || conv_dim.size() != conv_kernel.size() || conv_dim.size() != conv_stride.size())
    fail_at(where, "conv_dim, conv_kernel and conv_stride must be non-empty and equally long ({}, {}, {})",
            conv_dim.size(), conv_kernel.size(), conv_stride.size());
  for (size_t i = 0; i < conv_dim.size(); ++i)
    if (conv_dim[i] <= 0 || conv_kernel[i] <= 0 || conv_stride[i] <= 0)
      fail_at(where, "conv layer {} has a non-positive dim/kernel/stride", i);
  if (feat_extract_norm != "group")
    fail_at(where,
            "feat_extract_norm '{}' is not supported: only the group-norm feature extractor of wav2vec2-base "
            "(Hallo's encoder) is implemented",
            feat_extract_norm);
  if (do_stable_layer_norm)
    fail_at(where, "do_stable_layer_norm=true (pre-LN, wav2vec2-large-lv60 style) is not supported; "
                   "Hallo uses the post-LN wav2vec2-base");
  if (hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0 || num_attention_heads <= 0)
    fail_at(where, "hidden_size, intermediate_size, num_hidden_layers and num_attention_heads must be positive");
  if (hidden_size % num_attention_heads != 0)
    fail_at(where, "hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads);
  if (num_conv_pos_embeddings <= 0 || num_conv_pos_embedding_groups <= 0 ||
      hidden_size % num_conv_pos_embedding_groups != 0)
    fail_at(where, "hidden_size {} is not divisible by num_conv_pos_embedding_groups {}", hidden_size,
            num_conv_pos_embedding_groups);
}

int64_t Wav2Vec2Config::total_stride() const {
  int64_t s = 1;
  for (auto v : conv_stride) s *= v;
  return s;
}

int64_t Wav2Vec2Config::feature_frames(int64_t samples) const {
  int64_t n = samples;
  for (size_t i = 0; i < conv_kernel.size(); ++i) n = n < conv_kernel[i] ? 0 : (n - conv_kernel[i]) / conv_stride[i] + 1;
  return n;
}

}  // namespace hallo::model
