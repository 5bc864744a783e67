#include "model/hallo/image_proj.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::model {

namespace tnn = torch::nn;

ImageProjConfig ImageProjConfig::hallo(int64_t cross_attention_dim) {
  ImageProjConfig c;
  c.cross_attention_dim = cross_attention_dim;
  c.clip_embeddings_dim = 512;
  c.clip_extra_context_tokens = 4;
  return c;
}

ImageProjConfig ImageProjConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  if (f.has("_class_name") && f.get<std::string>("_class_name") != "ImageProjModel")
    fail_at(where, "field '_class_name' is '{}', expected 'ImageProjModel'", f.get<std::string>("_class_name"));
  for (const auto& k : f.unknown_keys({"cross_attention_dim", "clip_embeddings_dim", "clip_extra_context_tokens"}))
    fail_at(where, "unknown ImageProjModel field '{}'", k);
  ImageProjConfig c;
  c.cross_attention_dim = f.get_or<int64_t>("cross_attention_dim", c.cross_attention_dim);
  c.clip_embeddings_dim = f.get_or<int64_t>("clip_embeddings_dim", c.clip_embeddings_dim);
  c.clip_extra_context_tokens = f.get_or<int64_t>("clip_extra_context_tokens", c.clip_extra_context_tokens);
  c.validate(where);
  return c;
}

void ImageProjConfig::validate(const std::string& where) const {
  if (cross_attention_dim <= 0) fail_at(where, "field 'cross_attention_dim' must be positive, got {}", cross_attention_dim);
  if (clip_embeddings_dim <= 0) fail_at(where, "field 'clip_embeddings_dim' must be positive, got {}", clip_embeddings_dim);
  if (clip_extra_context_tokens <= 0)
    fail_at(where, "field 'clip_extra_context_tokens' must be positive, got {}", clip_extra_context_tokens);
}

ImageProjModelImpl::ImageProjModelImpl(const ImageProjConfig& c) : cfg_(c) {
  cfg_.validate("ImageProjConfig");
  proj = register_module("proj", tnn::Linear(cfg_.clip_embeddings_dim, cfg_.clip_extra_context_tokens * cfg_.cross_attention_dim));
  norm = register_module("norm", tnn::LayerNorm(tnn::LayerNormOptions({cfg_.cross_attention_dim}).eps(1e-5)));
}

at::Tensor ImageProjModelImpl::forward(const at::Tensor& image_embeds) {
  if (image_embeds.dim() < 1 || image_embeds.size(-1) != cfg_.clip_embeddings_dim)
    fail_at("ImageProjModel", "expected [B, {}] face embeddings, got shape {}", cfg_.clip_embeddings_dim,
            c10::str(image_embeds.sizes()));
  auto tokens = proj->forward(image_embeds)  // [..., tokens*dim]
                    .reshape({-1, cfg_.clip_extra_context_tokens, cfg_.cross_attention_dim});  // [N, tokens, dim]
  return norm->forward(tokens);  // [N, tokens, dim]
}

}  // namespace hallo::model
