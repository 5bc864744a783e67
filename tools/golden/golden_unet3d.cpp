// hallo_unet3d: the denoising UNet3DConditionModel in reference read mode
// (in.sample, in.timestep, in.encoder_hidden_states, in.mask_cond_fea, masks at
// every level, in.audio_embedding, in.motion_scale, in.bank.<block path>) -> out.sample.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "model/hallo/unet_3d.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_unet3d(const GoldenCase& c) {
  auto cfg = model::UNet3DConfig::from_json(c.config, c.name + ".config.json");
  model::UNet3DConditionModel unet(cfg);
  c.load_into(*unet);
  unet->eval();
  torch::NoGradGuard ng;

  model::AudioMasks masks{c.input_list("in.full_mask"), c.input_list("in.face_mask"), c.input_list("in.lip_mask")};
  model::ReferenceBank bank;
  const std::string prefix = "in.bank.";
  for (const auto& [k, v] : c.io)
    if (k.rfind(prefix, 0) == 0) bank.put(k.substr(prefix.size()), v);
  const at::Tensor face = c.has("in.mask_cond_fea") ? c.input("in.mask_cond_fea") : at::Tensor();
  const at::Tensor scale = c.has("in.motion_scale") ? c.input("in.motion_scale") : at::Tensor();

  model::Hooks hooks;
  auto out = unet->forward(c.input("in.sample"), c.input("in.timestep"), c.input("in.encoder_hidden_states"), face,
                           masks, c.input("in.audio_embedding"), scale, bank.size() ? &bank : nullptr,
                           c.want_hooks ? &hooks : nullptr);
  Outputs o{{"out.sample", out}};
  for (auto& [k, v] : hooks)
    if (c.has("hook." + k)) o["hook." + k] = v;  // only the module outputs upstream recorded
  return o;
}

}  // namespace hallo::golden
