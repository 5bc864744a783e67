// Golden runner for ddim_* cases: builds the DDIMScheduler from the recorded
// config, then replays the recorded loop
//   set_timesteps(n); for i, t: x = step(in.model_output.i, t, x, eta=0).prev_sample
// with the recorded random model outputs standing in for the UNet.
#include <ATen/ATen.h>

#include <string>

#include "core/error.h"
#include "model/schedulers/ddim.h"
#include "model/schedulers/scheduler_config.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_ddim(const GoldenCase& c) {
  const std::string where = (c.dir / (c.name + ".config.json")).string();
  // The top level is the full diffusers scheduler config; `_harness` and the other
  // '_' keys are skipped by from_json.
  const sched::SchedulerConfig cfg = sched::SchedulerConfig::from_json(c.config, where);
  sched::DDIMScheduler s(cfg, where);

  const at::Tensor n = c.input("in.num_inference_steps");
  if (n.numel() != 1) fail_at(c.name, "in.num_inference_steps must hold one integer, has {} values", n.numel());
  s.set_timesteps(static_cast<int>(n.item<int64_t>()));

  Outputs out;
  out["out.timesteps"] = s.timesteps();                       // I64 [n]
  out["out.alphas_cumprod"] = s.alphas_cumprod();             // F32 [T]
  out["out.final_alpha_cumprod"] = s.final_alpha_cumprod();   // F32 []
  out["out.init_noise_sigma"] = at::scalar_tensor(s.init_noise_sigma(), at::kFloat);  // F32 []

  at::Tensor x = c.input("in.sample");  // [B,C,H,W] or [B,C,F,H,W]
  const at::Tensor ts = s.timesteps();
  for (int64_t i = 0; i < ts.size(0); ++i) {
    const std::string k = std::to_string(i);
    const std::string mo_key = "in.model_output." + k;
    if (!c.has(mo_key))
      fail_at(c.name, "{} timesteps but no {} (one model output per step is needed)", ts.size(0), mo_key);
    const int64_t t = ts[i].item<int64_t>();
    const at::Tensor model_in = s.scale_model_input(x, t);
    const sched::DDIMStepOutput step = s.step(c.input(mo_key), t, model_in);
    out["out.scaled_model_input." + k] = model_in;
    out["out.prev_sample." + k] = step.prev_sample;
    out["out.pred_original_sample." + k] = step.pred_original_sample;
    x = step.prev_sample;
  }
  return out;
}

}  // namespace hallo::golden
