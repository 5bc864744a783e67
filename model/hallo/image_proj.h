#pragma once
// Hallo ImageProjModel: the face embedding (raw 512-d ArcFace vector) becomes a
// few cross-attention context tokens: Linear -> [N, tokens, dim] -> LayerNorm.
// Keys: proj, norm.
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <string>

namespace hallo::model {

struct ImageProjConfig {
  // Upstream constructor defaults; Hallo's values are in hallo().
  int64_t cross_attention_dim = 1024;
  int64_t clip_embeddings_dim = 1024;
  int64_t clip_extra_context_tokens = 4;

  // Hallo: the UNet's cross_attention_dim (768 for SD1.5), 512-d ArcFace, 4 tokens.
  static ImageProjConfig hallo(int64_t cross_attention_dim = 768);
  static ImageProjConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
};

class ImageProjModelImpl : public torch::nn::Module {
 public:
  explicit ImageProjModelImpl(const ImageProjConfig& c);
  // image_embeds: [B, clip_dim] -> [B, tokens, dim]. Like upstream's reshape(-1, ...),
  // any leading dims are flattened: [B, N, clip_dim] -> [B*N, tokens, dim].
  at::Tensor forward(const at::Tensor& image_embeds);
  const ImageProjConfig& config() const { return cfg_; }

  torch::nn::Linear proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  ImageProjConfig cfg_;
};
TORCH_MODULE(ImageProjModel);

}  // namespace hallo::model
