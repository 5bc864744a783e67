#include "model/hallo/audio_proj.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <utility>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

namespace tnn = torch::nn;

AudioProjConfig AudioProjConfig::hallo() { return AudioProjConfig{}; }

AudioProjConfig AudioProjConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  if (f.has("_class_name") && f.get<std::string>("_class_name") != "AudioProjModel")
    fail_at(where, "field '_class_name' is '{}', expected 'AudioProjModel'", f.get<std::string>("_class_name"));
  for (const auto& k :
       f.unknown_keys({"seq_len", "blocks", "channels", "intermediate_dim", "output_dim", "context_tokens"}))
    fail_at(where, "unknown AudioProjModel field '{}'", k);
  AudioProjConfig c;
  c.seq_len = f.get_or<int64_t>("seq_len", c.seq_len);
  c.blocks = f.get_or<int64_t>("blocks", c.blocks);
  c.channels = f.get_or<int64_t>("channels", c.channels);
  c.intermediate_dim = f.get_or<int64_t>("intermediate_dim", c.intermediate_dim);
  c.output_dim = f.get_or<int64_t>("output_dim", c.output_dim);
  c.context_tokens = f.get_or<int64_t>("context_tokens", c.context_tokens);
  c.validate(where);
  return c;
}

void AudioProjConfig::validate(const std::string& where) const {
  const std::pair<const char*, int64_t> fields[] = {{"seq_len", seq_len},
                                                    {"blocks", blocks},
                                                    {"channels", channels},
                                                    {"intermediate_dim", intermediate_dim},
                                                    {"output_dim", output_dim},
                                                    {"context_tokens", context_tokens}};
  for (const auto& [name, v] : fields)
    if (v <= 0) fail_at(where, "field '{}' must be positive, got {}", name, v);
}

AudioProjModelImpl::AudioProjModelImpl(const AudioProjConfig& c) : cfg_(c) {
  cfg_.validate("AudioProjConfig");
  proj1 = register_module("proj1", tnn::Linear(cfg_.input_dim(), cfg_.intermediate_dim));
  proj2 = register_module("proj2", tnn::Linear(cfg_.intermediate_dim, cfg_.intermediate_dim));
  proj3 = register_module("proj3", tnn::Linear(cfg_.intermediate_dim, cfg_.context_tokens * cfg_.output_dim));
  norm = register_module("norm", tnn::LayerNorm(tnn::LayerNormOptions({cfg_.output_dim}).eps(1e-5)));
}

at::Tensor AudioProjModelImpl::forward(const at::Tensor& audio_embeds) {
  const auto& s = audio_embeds.sizes();
  if (audio_embeds.dim() != 5 || s[2] != cfg_.seq_len || s[3] != cfg_.blocks || s[4] != cfg_.channels)
    fail_at("AudioProjModel", "expected [B, F, {}, {}, {}] audio windows (seq_len, blocks, channels), got shape {}",
            cfg_.seq_len, cfg_.blocks, cfg_.channels, c10::str(s));
  const int64_t b = s[0], f = s[1];
  auto x = audio_embeds.reshape({b * f, cfg_.input_dim()});  // [B*F, seq_len*blocks*channels]
  x = at::relu(proj1->forward(x));                          // [B*F, inter]
  x = at::relu(proj2->forward(x));                          // [B*F, inter]
  x = proj3->forward(x).reshape({b * f, cfg_.context_tokens, cfg_.output_dim});  // [B*F, T, D]
  x = norm->forward(x);                                                          // [B*F, T, D]
  return x.reshape({b, f, cfg_.context_tokens, cfg_.output_dim});               // [B, F, T, D]
}

}  // namespace hallo::model
