// hallo_pipeline: one clip of upstream inference. Net weights in net.pth layout
// (NAME.weights.safetensors), VAE weights = vae.weights.safetensors beside it,
// scheduler and call settings from the config (`scheduler`, `_harness.pipeline_call`).
// Produces out.videos and, for debugging, rec.* intermediates under upstream's names.
#include <ATen/ATen.h>

#include "core/error.h"
#include "model/hallo/clip_pipeline.h"
#include "model/io/hf_config.h"
#include "model/nn/loader.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_pipeline(const GoldenCase& c) {
  const std::string where = c.name + ".config.json";
  if (!c.config.contains("net") || !c.config.contains("vae") || !c.config.contains("scheduler"))
    fail_at(where, "a pipeline golden needs 'net', 'vae' and 'scheduler' objects");
  auto net_cfg = model::HalloNetConfig::from_json(c.config["net"], where + ":net");
  model::HalloNet net(net_cfg);
  c.load_into(*net);
  net->eval();
  model::AutoencoderKL vae(model::VaeConfig::from_json(c.config["vae"], where + ":vae"));
  const auto vae_path = c.dir / "vae.weights.safetensors";
  if (!std::filesystem::exists(vae_path)) fail_at(vae_path.string(), "no such file (the pipeline golden's VAE weights)");
  nn::load_weights(*vae, io::StateDict::open(vae_path), {c.strict, model::vae_translate_legacy_key});
  vae->eval();
  sched::DDIMScheduler scheduler(sched::SchedulerConfig::from_json(c.config["scheduler"], where + ":scheduler"), where);

  io::JsonFields call(c.config.at("_harness").at("pipeline_call"), where + ":_harness.pipeline_call");
  model::ClipSettings settings;
  settings.num_inference_steps = call.get<int>("num_inference_steps");
  settings.guidance_scale = call.get<double>("guidance_scale");
  settings.eta = call.get_or<double>("eta", 0.0);

  model::ClipInputs in;
  in.ref_frames = c.input("in.ref_image").squeeze(0);  // [1, S, 3, H, W] -> [S, 3, H, W]
  in.face_emb = c.input("in.face_emb");
  in.audio_windows = c.input("in.audio_emb_windows");
  in.face_region = c.input("in.face_region");
  in.masks = {c.input_list("in.pixel_values_full_mask"), c.input_list("in.pixel_values_face_mask"),
              c.input_list("in.pixel_values_lip_mask")};
  in.motion_scale = c.input("in.motion_scale");
  in.init_latents = c.input("in.init_latents");

  model::ClipRecord record;
  Outputs o{{"out.videos", model::animate_clip(net, vae, scheduler, in, settings, c.want_hooks ? &record : nullptr)}};
  for (auto& [k, v] : record) o["rec." + k] = v;
  return o;
}

}  // namespace hallo::golden
