#pragma once
// Settings of `hallo animate` (configs/inference/default.yaml carries upstream's
// names and values). Typed, with a preset and from_yaml like the training config;
// CLI flags override single fields after loading.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "model/schedulers/scheduler_config.h"

namespace hallo::inference {

struct AnimateConfig {
  // Clip geometry. width/height/frames/motion frames default to the model folder's
  // training values when left at 0; upstream: 512^2, 16 frames, 2 motion frames.
  int width = 0, height = 0;
  int n_sample_frames = 0;
  int n_motion_frames = 0;
  double fps = 25.0;
  // Sampling (upstream inference/default.yaml).
  int inference_steps = 40;
  double cfg_scale = 3.5;          // single batched CFG
  double audio_cfg_scale = -1;     // separate audio / image guidance when both >= 0
  double image_cfg_scale = -1;
  double pose_weight = 1.0, face_weight = 1.0, lip_weight = 1.0;
  int motion_noise_timestep = -1;  // Hallo2-style noisy motion frames; < 0 off
  uint64_t seed = 42;
  std::string weight_dtype = "fp32";  // fp32 | fp16 | bf16 (upstream: fp16 on CUDA)
  std::string device = "cpu";
  // Reference preprocessing.
  double face_expand_ratio = 1.2;  // upstream: face mask box scale about its centre
  double crop_scale = 2.0;         // square crop = crop_scale * face size, when the model does not say
  // Scheduler for sampling: upstream's inference DDIM ("linear" betas, v-prediction,
  // zero-terminal-SNR rescale, trailing).
  nlohmann::json noise_scheduler_kwargs;

  static AnimateConfig defaults();  // upstream's values
  // YAML or JSON; an unknown key is an error naming the key and the file.
  static AnimateConfig from_file(const std::filesystem::path& file);
  static AnimateConfig from_json(const nlohmann::json& j, const std::string& where);
  sched::SchedulerConfig scheduler() const;
  void validate(const std::string& where) const;
};

}  // namespace hallo::inference
