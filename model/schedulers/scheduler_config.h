#pragma once
// Noise-schedule / DDIM configuration with the field names and defaults of
// diffusers 0.27 DDIMScheduler, so a diffusers scheduler_config.json (or the
// kwargs Hallo passes in its YAML) maps one to one.
#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>
#include <vector>

namespace hallo::sched {

enum class BetaSchedule { Linear, ScaledLinear, SquaredCosCapV2 };
enum class PredictionType { Epsilon, VPrediction, Sample };
enum class TimestepSpacing { Leading, Trailing, Linspace };

// Spelling used in the JSON configs ("scaled_linear", "v_prediction", ...).
const char* to_string(BetaSchedule v);
const char* to_string(PredictionType v);
const char* to_string(TimestepSpacing v);

struct SchedulerConfig {
  int num_train_timesteps = 1000;
  double beta_start = 0.0001;
  double beta_end = 0.02;
  BetaSchedule beta_schedule = BetaSchedule::Linear;
  std::optional<std::vector<double>> trained_betas;  // overrides the schedule; size num_train_timesteps
  bool clip_sample = true;
  double clip_sample_range = 1.0;
  bool set_alpha_to_one = true;
  int steps_offset = 0;
  PredictionType prediction_type = PredictionType::Epsilon;
  bool thresholding = false;  // dynamic thresholding is not implemented: validate() rejects true
  double dynamic_thresholding_ratio = 0.995;  // read for completeness, only used with thresholding
  double sample_max_value = 1.0;              // idem
  TimestepSpacing timestep_spacing = TimestepSpacing::Leading;
  bool rescale_betas_zero_snr = false;

  // Stable Diffusion 1.5 (its scheduler_config.json as a DDIMScheduler).
  static SchedulerConfig sd15();
  // Hallo scripts/inference.py val_noise_scheduler: note beta_schedule "linear"
  // (not scaled_linear) with zero-SNR rescale, trailing spacing, v-prediction.
  static SchedulerConfig hallo_inference();
  // Hallo scripts/train_stage*.py train_noise_scheduler: as above but scaled_linear.
  static SchedulerConfig hallo_train();

  // Reads every known field (missing or null -> default). Keys starting with '_'
  // (`_class_name`, `_harness`, ...) and keys of other schedulers (PNDM's
  // `skip_prk_steps`, DDPM's `variance_type`) are ignored, as diffusers'
  // from_config does. Errors name `where` and the field. Validates.
  static SchedulerConfig from_json(const nlohmann::json& j, const std::string& where);
  // Non-'_' keys of `j` that from_json does not read (for callers that warn).
  static std::vector<std::string> unknown_keys(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;

  // Throws hallo::Error "<where>: field '<name>' ..." for values diffusers would
  // reject or that cannot give a valid schedule.
  void validate(const std::string& where) const;
};

}  // namespace hallo::sched
