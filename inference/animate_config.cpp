#include "inference/animate_config.h"

#include <spdlog/spdlog.h>

#include "core/config_file.h"
#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::inference {

AnimateConfig AnimateConfig::defaults() {
  AnimateConfig c;
  c.noise_scheduler_kwargs = {{"beta_start", 0.00085},         {"beta_end", 0.012},
                              {"beta_schedule", "linear"},     {"clip_sample", false},
                              {"steps_offset", 1},             {"prediction_type", "v_prediction"},
                              {"rescale_betas_zero_snr", true}, {"timestep_spacing", "trailing"}};
  return c;
}

AnimateConfig AnimateConfig::from_file(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) fail_at(file.string(), "no such inference config");
  return from_json(load_config_file(file), file.string());
}

AnimateConfig AnimateConfig::from_json(const nlohmann::json& j, const std::string& where) {
  AnimateConfig c = defaults();
  if (!j.is_object()) fail_at(where, "an inference config must be a mapping");
  io::JsonFields f(j, where);
  // Upstream keys whose job the command line or the model folder does here.
  static const std::map<std::string, std::string> elsewhere = {
      {"source_image", "--ref"}, {"driving_audio", "--audio"}, {"save_path", "--out"}, {"cache_path", "--out"},
      {"audio_ckpt_dir", "--model or --net"}, {"base_model_path", "--model or --net"},
      {"motion_module_path", "--motion-module"}, {"vae", "--model or --vae"}, {"wav2vec", "--model or --wav2vec2"},
      {"audio_separator", "the model folder's audio settings"}, {"face_analysis", "the model folder's face settings"},
      {"unet_additional_kwargs", "the model folder's net config"}, {"use_mask", "Hallo2 training only"},
      {"mask_rate", "Hallo2 training only"}, {"use_cut", "Hallo2 training only"}};
  static const std::set<std::string> known = {
      "weight_dtype", "device", "data", "inference_steps", "cfg_scale", "audio_cfg_scale", "image_cfg_scale", "seed",
      "face_expand_ratio", "crop_scale", "pose_weight", "face_weight", "lip_weight", "motion_noise_timestep",
      "enable_zero_snr", "noise_scheduler_kwargs", "sampler"};
  for (const auto& k : f.unknown_keys(known)) {
    const auto it = elsewhere.find(k);
    if (it == elsewhere.end()) fail_at(where, "unknown key '{}'", k);
    spdlog::warn("{}: '{}' is ignored here (given by {})", where, k, it->second);
  }
  c.weight_dtype = f.get_or<std::string>("weight_dtype", c.weight_dtype);
  c.device = f.get_or<std::string>("device", c.device);
  if (f.has("data")) {
    io::JsonFields d = f.object("data");
    for (const auto& k : d.unknown_keys({"n_motion_frames", "n_sample_frames", "source_image", "driving_audio", "export_video"}))
      fail_at(where, "unknown key 'data.{}'", k);
    c.n_motion_frames = d.get_or<int>("n_motion_frames", c.n_motion_frames);
    c.n_sample_frames = d.get_or<int>("n_sample_frames", c.n_sample_frames);
    if (d.has("source_image")) {
      io::JsonFields s = d.object("source_image");
      c.width = s.get_or<int>("width", c.width);
      c.height = s.get_or<int>("height", c.height);
    }
    if (d.has("export_video")) c.fps = d.object("export_video").get_or<double>("fps", c.fps);
  }
  c.inference_steps = f.get_or<int>("inference_steps", c.inference_steps);
  c.cfg_scale = f.get_or<double>("cfg_scale", c.cfg_scale);
  c.audio_cfg_scale = f.get_or<double>("audio_cfg_scale", c.audio_cfg_scale);
  c.image_cfg_scale = f.get_or<double>("image_cfg_scale", c.image_cfg_scale);
  c.seed = static_cast<uint64_t>(f.get_or<int64_t>("seed", static_cast<int64_t>(c.seed)));
  c.face_expand_ratio = f.get_or<double>("face_expand_ratio", c.face_expand_ratio);
  c.crop_scale = f.get_or<double>("crop_scale", c.crop_scale);
  c.pose_weight = f.get_or<double>("pose_weight", c.pose_weight);
  c.face_weight = f.get_or<double>("face_weight", c.face_weight);
  c.lip_weight = f.get_or<double>("lip_weight", c.lip_weight);
  c.motion_noise_timestep = f.get_or<int>("motion_noise_timestep", c.motion_noise_timestep);
  if (f.has("noise_scheduler_kwargs")) c.noise_scheduler_kwargs = j.at("noise_scheduler_kwargs");
  if (f.get_or<bool>("enable_zero_snr", true)) {  // upstream forces these three when set
    c.noise_scheduler_kwargs["rescale_betas_zero_snr"] = true;
    c.noise_scheduler_kwargs["timestep_spacing"] = "trailing";
    c.noise_scheduler_kwargs["prediction_type"] = "v_prediction";
  }
  if (f.get_or<std::string>("sampler", "DDIM") != "DDIM") fail_at(where, "sampler must be DDIM (upstream's only sampler)");
  c.validate(where);
  return c;
}

sched::SchedulerConfig AnimateConfig::scheduler() const {
  return sched::SchedulerConfig::from_json(noise_scheduler_kwargs, "noise_scheduler_kwargs");
}

void AnimateConfig::validate(const std::string& where) const {
  if (width < 0 || height < 0 || width % 8 || height % 8) fail_at(where, "width and height must be multiples of 8, got {}x{}", width, height);
  if (n_sample_frames < 0 || n_motion_frames < 0) fail_at(where, "frame counts must be >= 0");
  if (inference_steps < 1) fail_at(where, "inference_steps must be >= 1, got {}", inference_steps);
  if (fps <= 0) fail_at(where, "fps must be > 0");
  if ((audio_cfg_scale >= 0) != (image_cfg_scale >= 0))
    fail_at(where, "audio_cfg_scale and image_cfg_scale go together (set both, or neither)");
  if (face_expand_ratio <= 0 || crop_scale <= 0) fail_at(where, "face_expand_ratio and crop_scale must be > 0");
  if (weight_dtype != "fp32" && weight_dtype != "fp16" && weight_dtype != "bf16")
    fail_at(where, "weight_dtype must be fp32, fp16 or bf16, got '{}'", weight_dtype);
  scheduler();
}

}  // namespace hallo::inference
