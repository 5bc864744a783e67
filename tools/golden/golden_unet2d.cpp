// sd_unet2d: UNet2DConditionModel(in.sample, in.timestep, in.encoder_hidden_states).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "model/nn/loader.h"
#include "model/unet2d/unet_2d_condition.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_unet2d(const GoldenCase& c) {
  auto cfg = model::UNet2DConfig::from_json(c.config, c.name + ".config.json");
  model::UNet2DConditionModel unet(cfg);
  c.load_into(*unet);
  unet->eval();
  torch::NoGradGuard ng;
  model::Hooks hooks;
  auto out = unet->forward(c.input("in.sample"), c.input("in.timestep"), c.input("in.encoder_hidden_states"),
                           c.want_hooks ? &hooks : nullptr);
  Outputs o{{"out.sample", out}};
  for (auto& [k, v] : hooks) o["hook." + k] = v;
  return o;
}

}  // namespace hallo::golden
