// hallo_reference_unet: ReferenceNet (UNet2D without conv_norm_out/conv_out) in
// write mode at timestep 0 on [ref, motion...] x CFG latents. Upstream's write
// forward repeats the 2 CFG context rows over the 3 reference rows
// ([uncond, cond, uncond, cond, ...] against [r, m1, m2, r, m1, m2]), a quirk
// reproduced here. Outputs the last up-block features and every bank entry.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "model/hallo/reference_bank.h"
#include "model/unet2d/unet_2d_condition.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_reference_unet(const GoldenCase& c) {
  // The harness records the base SD config; the file's own fields are the same.
  auto cfg = model::UNet2DConfig::from_json(c.config, c.name + ".config.json");
  cfg.reference_net = true;
  model::UNet2DConditionModel net(cfg);
  c.load_into(*net);
  net->eval();
  torch::NoGradGuard ng;
  const auto& latents = c.input("in.ref_latents");          // [N, 4, h, w]
  const auto& ctx = c.input("in.encoder_hidden_states");    // [2, L, D]
  if (latents.size(0) % ctx.size(0) != 0)
    fail("{}: {} reference rows are not a multiple of {} context rows", c.name, latents.size(0), ctx.size(0));
  const auto ctx_rep = ctx.repeat({latents.size(0) / ctx.size(0), 1, 1});  // quirk: tiled, not interleaved
  model::ReferenceBank bank;
  model::Hooks hooks;
  auto out = net->forward(latents, c.input("in.timestep"), ctx_rep, c.want_hooks ? &hooks : nullptr, &bank);
  Outputs o{{"out.sample", out}};
  for (const auto& k : bank.order()) o["out.bank." + k] = bank.get(k);
  for (auto& [k, v] : hooks) o["hook." + k] = v;
  return o;
}

}  // namespace hallo::golden
