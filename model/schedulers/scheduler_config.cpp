#include "model/schedulers/scheduler_config.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::sched {

namespace {

// One table per enum keeps parsing, printing and the error's list of choices in sync.
template <typename E>
struct EnumName {
  E value;
  const char* name;
};
constexpr EnumName<BetaSchedule> kBetaSchedules[] = {
    {BetaSchedule::Linear, "linear"},
    {BetaSchedule::ScaledLinear, "scaled_linear"},
    {BetaSchedule::SquaredCosCapV2, "squaredcos_cap_v2"}};
constexpr EnumName<PredictionType> kPredictionTypes[] = {
    {PredictionType::Epsilon, "epsilon"},
    {PredictionType::VPrediction, "v_prediction"},
    {PredictionType::Sample, "sample"}};
constexpr EnumName<TimestepSpacing> kSpacings[] = {
    {TimestepSpacing::Leading, "leading"},
    {TimestepSpacing::Trailing, "trailing"},
    {TimestepSpacing::Linspace, "linspace"}};

template <typename E, size_t N>
const char* name_of(const EnumName<E> (&table)[N], E v) {
  for (const auto& e : table)
    if (e.value == v) return e.name;
  return "?";
}

template <typename E, size_t N>
E parse_enum(const io::JsonFields& f, const std::string& key, E fallback, const EnumName<E> (&table)[N]) {
  if (!f.has(key)) return fallback;
  const std::string s = f.get<std::string>(key);
  std::string choices;
  for (const auto& e : table) {
    if (s == e.name) return e.value;
    choices += (choices.empty() ? "" : ", ") + std::string(e.name);
  }
  fail_at(f.where(), "field '{}' is \"{}\", expected one of {}", key, s, choices);
}

const std::set<std::string>& known_keys() {
  static const std::set<std::string> k = {
      "num_train_timesteps", "beta_start",    "beta_end",          "beta_schedule",
      "trained_betas",       "clip_sample",   "clip_sample_range", "set_alpha_to_one",
      "steps_offset",        "prediction_type", "thresholding",    "dynamic_thresholding_ratio",
      "sample_max_value",    "timestep_spacing", "rescale_betas_zero_snr"};
  return k;
}

}  // namespace

const char* to_string(BetaSchedule v) { return name_of(kBetaSchedules, v); }
const char* to_string(PredictionType v) { return name_of(kPredictionTypes, v); }
const char* to_string(TimestepSpacing v) { return name_of(kSpacings, v); }

SchedulerConfig SchedulerConfig::sd15() {
  SchedulerConfig c;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = BetaSchedule::ScaledLinear;
  c.clip_sample = false;
  c.set_alpha_to_one = false;
  c.steps_offset = 1;
  c.prediction_type = PredictionType::Epsilon;
  c.timestep_spacing = TimestepSpacing::Leading;
  return c;
}

SchedulerConfig SchedulerConfig::hallo_inference() {
  SchedulerConfig c;
  c.beta_start = 0.00085;
  c.beta_end = 0.012;
  c.beta_schedule = BetaSchedule::Linear;  // upstream passes "linear" here, unlike training
  c.clip_sample = false;
  c.set_alpha_to_one = true;  // upstream leaves the diffusers default
  c.steps_offset = 1;
  c.prediction_type = PredictionType::VPrediction;
  c.rescale_betas_zero_snr = true;
  c.timestep_spacing = TimestepSpacing::Trailing;
  return c;
}

SchedulerConfig SchedulerConfig::hallo_train() {
  SchedulerConfig c = hallo_inference();
  c.beta_schedule = BetaSchedule::ScaledLinear;
  return c;
}

SchedulerConfig SchedulerConfig::from_json(const nlohmann::json& j, const std::string& where) {
  const io::JsonFields f(j, where);
  SchedulerConfig c;  // diffusers DDIMScheduler defaults
  c.num_train_timesteps = f.get_or<int>("num_train_timesteps", c.num_train_timesteps);
  c.beta_start = f.get_or<double>("beta_start", c.beta_start);
  c.beta_end = f.get_or<double>("beta_end", c.beta_end);
  c.beta_schedule = parse_enum(f, "beta_schedule", c.beta_schedule, kBetaSchedules);
  if (f.has("trained_betas")) c.trained_betas = f.get<std::vector<double>>("trained_betas");
  c.clip_sample = f.get_or<bool>("clip_sample", c.clip_sample);
  c.clip_sample_range = f.get_or<double>("clip_sample_range", c.clip_sample_range);
  c.set_alpha_to_one = f.get_or<bool>("set_alpha_to_one", c.set_alpha_to_one);
  c.steps_offset = f.get_or<int>("steps_offset", c.steps_offset);
  c.prediction_type = parse_enum(f, "prediction_type", c.prediction_type, kPredictionTypes);
  c.thresholding = f.get_or<bool>("thresholding", c.thresholding);
  c.dynamic_thresholding_ratio = f.get_or<double>("dynamic_thresholding_ratio", c.dynamic_thresholding_ratio);
  c.sample_max_value = f.get_or<double>("sample_max_value", c.sample_max_value);
  c.timestep_spacing = parse_enum(f, "timestep_spacing", c.timestep_spacing, kSpacings);
  c.rescale_betas_zero_snr = f.get_or<bool>("rescale_betas_zero_snr", c.rescale_betas_zero_snr);
  c.validate(where);
  return c;
}

std::vector<std::string> SchedulerConfig::unknown_keys(const nlohmann::json& j, const std::string& where) {
  return io::JsonFields(j, where).unknown_keys(known_keys());
}

nlohmann::json SchedulerConfig::to_json() const {
  nlohmann::json j;
  j["num_train_timesteps"] = num_train_timesteps;
  j["beta_start"] = beta_start;
  j["beta_end"] = beta_end;
  j["beta_schedule"] = to_string(beta_schedule);
  j["trained_betas"] = trained_betas ? nlohmann::json(*trained_betas) : nlohmann::json(nullptr);
  j["clip_sample"] = clip_sample;
  j["clip_sample_range"] = clip_sample_range;
  j["set_alpha_to_one"] = set_alpha_to_one;
  j["steps_offset"] = steps_offset;
  j["prediction_type"] = to_string(prediction_type);
  j["thresholding"] = thresholding;
  j["dynamic_thresholding_ratio"] = dynamic_thresholding_ratio;
  j["sample_max_value"] = sample_max_value;
  j["timestep_spacing"] = to_string(timestep_spacing);
  j["rescale_betas_zero_snr"] = rescale_betas_zero_snr;
  return j;
}

void SchedulerConfig::validate(const std::string& where) const {
  if (num_train_timesteps < 1)
    fail_at(where, "field 'num_train_timesteps' is {}, expected >= 1", num_train_timesteps);
  // Betas are variances of the per-step noise: outside [0, 1) the alphas are not
  // probabilities and alphas_cumprod turns negative or NaN.
  auto check_beta = [&](const char* field, double b) {
    if (!std::isfinite(b) || b < 0.0 || b >= 1.0) fail_at(where, "field '{}' is {}, expected a value in [0, 1)", field, b);
  };
  if (trained_betas) {
    if (static_cast<int>(trained_betas->size()) != num_train_timesteps)
      fail_at(where, "field 'trained_betas' has {} values, expected num_train_timesteps = {}",
              trained_betas->size(), num_train_timesteps);
    for (double b : *trained_betas) check_beta("trained_betas", b);
  } else if (beta_schedule != BetaSchedule::SquaredCosCapV2) {
    check_beta("beta_start", beta_start);
    check_beta("beta_end", beta_end);
  }
  if (!(clip_sample_range > 0.0) || !std::isfinite(clip_sample_range))
    fail_at(where, "field 'clip_sample_range' is {}, expected a positive number", clip_sample_range);
  if (steps_offset < 0) fail_at(where, "field 'steps_offset' is {}, expected >= 0", steps_offset);
  if (thresholding)
    fail_at(where, "field 'thresholding' is true: dynamic thresholding is not supported (it is meant for "
                   "pixel-space models, not latent diffusion)");
}

}  // namespace hallo::sched
