// vae: encode(in.image) -> posterior mean/logvar and Hallo's reference latents;
// decode(in.z) -> image, and Hallo's per-frame video conversion.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "model/nn/loader.h"
#include "model/vae/autoencoder_kl.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_vae(const GoldenCase& c) {
  auto cfg = model::VaeConfig::from_json(c.config, c.name + ".config.json");
  model::AutoencoderKL vae(cfg);
  c.load_into(*vae, model::vae_translate_legacy_key);
  vae->eval();
  torch::NoGradGuard ng;
  Outputs o;
  if (c.has("in.image")) {
    auto post = vae->encode(c.input("in.image"));
    o["out.latent_mean"] = post.mean;
    o["out.latent_logvar"] = post.logvar;
    o["out.hallo_ref_latents"] = post.mean * cfg.scaling_factor;
  }
  if (c.has("in.z")) {
    const auto& z = c.input("in.z");
    o["out.decoded"] = vae->decode(z);
    o["out.hallo_video_frame"] = (vae->decode(z / cfg.scaling_factor) / 2 + 0.5).clamp(0, 1);
  }
  return o;
}

}  // namespace hallo::golden
