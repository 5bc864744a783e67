// hallo_pipeline: one clip of upstream inference. Net weights in net.pth layout
// (NAME.weights.safetensors), VAE weights = vae.weights.safetensors beside it,
// scheduler and call settings from the config (`scheduler`, `_harness.pipeline_call`).
// Produces out.videos and, for debugging, rec.* intermediates under upstream's names.
#include <ATen/ATen.h>

#include "core/error.h"
#include "inference/animator.h"
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
  const auto sched_cfg = sched::SchedulerConfig::from_json(c.config["scheduler"], where + ":scheduler");

  // Through the animator `hallo animate` and training validation use: one clip with
  // its recorded initial noise and motion frames.
  io::JsonFields call(c.config.at("_harness").at("pipeline_call"), where + ":_harness.pipeline_call");
  inference::AnimateSettings as;
  as.clip.num_inference_steps = call.get<int>("num_inference_steps");
  as.clip.guidance_scale = call.get<double>("guidance_scale");
  as.clip.eta = call.get_or<double>("eta", 0.0);

  const at::Tensor ref = c.input("in.ref_image").squeeze(0);  // [1, S, 3, H, W] -> [S, 3, H, W]
  const at::Tensor scale = c.input("in.motion_scale").to(at::kDouble);
  as.pose_weight = scale[0].item<double>();
  as.face_weight = scale[1].item<double>();
  as.lip_weight = scale[2].item<double>();
  const at::Tensor noise = c.input("in.init_latents");  // [1, C, F, h, w]
  as.frames_per_clip = static_cast<int>(noise.size(2));
  as.motion_frames = static_cast<int>(ref.size(0) - 1);

  inference::AnimateInputs in;
  in.reference = ref[0];
  if (ref.size(0) > 1) in.first_motion = ref.narrow(0, 1, ref.size(0) - 1);
  in.face_emb = c.input("in.face_emb");
  in.audio_windows = c.input("in.audio_emb_windows").squeeze(0);  // [F, 2r+1, L, D]
  in.frames = noise.size(2);
  in.face_region = c.input("in.face_region");
  in.init_noise = {noise};
  // The pipeline repeats one mask per frame; the animator takes that one row.
  auto rows = [&](const std::vector<at::Tensor>& levels, const char* name) {
    std::vector<at::Tensor> out;
    for (const auto& m : levels) {
      const auto row = m.reshape({-1, m.size(-1)}).narrow(0, 0, 1);
      if (!at::equal(m.reshape({-1, m.size(-1)}), row.expand({m.numel() / m.size(-1), -1})))
        fail_at(where, "{}: masks differ between frames (the animator takes one mask per clip)", name);
      out.push_back(row);
    }
    return out;
  };
  in.masks = {rows(c.input_list("in.pixel_values_full_mask"), "in.pixel_values_full_mask"),
              rows(c.input_list("in.pixel_values_face_mask"), "in.pixel_values_face_mask"),
              rows(c.input_list("in.pixel_values_lip_mask"), "in.pixel_values_lip_mask")};

  inference::Animator animator(net, vae, sched_cfg, as);
  model::ClipRecord record;
  const at::Tensor frames = animator.render(in, {}, c.want_hooks ? &record : nullptr);  // [F, 3, H, W]
  Outputs o{{"out.videos", frames.permute({1, 0, 2, 3}).unsqueeze(0).contiguous()}};
  for (auto& [k, v] : record) o["rec." + k.substr(k.find('.') + 1)] = v;  // "clip0.<name>" -> "rec.<name>"
  return o;
}

}  // namespace hallo::golden
