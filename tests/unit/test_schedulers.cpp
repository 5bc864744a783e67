// Noise schedules and DDIM: hand-derived values of the diffusers 0.27 formulas,
// algebraic identities, config errors, and the ddim_* goldens.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>
#include <vector>

#include "model/io/hf_config.h"
#include "model/io/state_dict.h"
#include "model/schedulers/ddim.h"
#include "model/schedulers/ddpm.h"
#include "model/schedulers/scheduler_config.h"
#include "test_util.h"

using namespace hallo::sched;
using hallo::test::expect_error;

namespace {

std::vector<int64_t> to_vec(const at::Tensor& t) {
  const at::Tensor c = t.contiguous().to(at::kLong);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

std::vector<int64_t> timesteps_for(SchedulerConfig cfg, TimestepSpacing spacing, int n) {
  cfg.timestep_spacing = spacing;
  DDIMScheduler s(cfg);
  s.set_timesteps(n);
  return to_vec(s.timesteps());
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace

// ---------------------------------------------------------------- betas / alphas

TEST(NoiseSchedule, Sd15ScaledLinearValues) {
  NoiseSchedule s(SchedulerConfig::sd15());
  ASSERT_EQ(s.alphas_cumprod().scalar_type(), at::kFloat);
  ASSERT_EQ(s.alphas_cumprod().size(0), 1000);
  // beta_0 = (sqrt(0.00085))^2, beta_999 = (sqrt(0.012))^2, both rounded through float32.
  EXPECT_NEAR(s.betas()[0].item<double>(), 0.00085, 1e-9);
  EXPECT_NEAR(s.betas()[999].item<double>(), 0.012, 1e-9);
  EXPECT_NEAR(s.alphas_cumprod()[0].item<double>(), 0.99915, 1e-7);
  // prod_i (1 - beta_i) evaluated in float64 by hand: 0.0046600985...
  EXPECT_NEAR(s.alphas_cumprod()[999].item<double>(), 0.0046600985, 1e-8);
}

TEST(NoiseSchedule, LinearBetasAreEvenlySpaced) {
  SchedulerConfig c;  // diffusers defaults: linear 1e-4 .. 0.02
  NoiseSchedule s(c);
  EXPECT_NEAR(s.betas()[0].item<double>(), 1e-4, 1e-10);
  EXPECT_NEAR(s.betas()[999].item<double>(), 0.02, 1e-9);
  EXPECT_NEAR(s.betas()[500].item<double>(), 1e-4 + (0.02 - 1e-4) * 500 / 999, 1e-9);
}

TEST(NoiseSchedule, CosineScheduleIsCappedAt0999) {
  SchedulerConfig c;
  c.beta_schedule = BetaSchedule::SquaredCosCapV2;
  NoiseSchedule s(c);
  // Last step: 1 - cos^2(pi/2) / cos^2(...) = 1, capped at 0.999.
  EXPECT_FLOAT_EQ(s.betas()[999].item<float>(), 0.999f);
  const double pi = 3.141592653589793;
  const double f0 = std::pow(std::cos(0.008 / 1.008 * pi / 2), 2), f1 = std::pow(std::cos((0.001 + 0.008) / 1.008 * pi / 2), 2);
  EXPECT_FLOAT_EQ(s.betas()[0].item<float>(), static_cast<float>(1 - f1 / f0));
}

TEST(NoiseSchedule, TrainedBetasOverrideTheSchedule) {
  SchedulerConfig c;
  c.num_train_timesteps = 4;
  c.trained_betas = std::vector<double>{0.1, 0.2, 0.3, 0.4};
  NoiseSchedule s(c);
  EXPECT_NEAR(s.alphas_cumprod()[3].item<double>(), 0.9 * 0.8 * 0.7 * 0.6, 1e-6);
}

TEST(NoiseSchedule, ZeroSnrRescaleMakesTerminalAlphaExactlyZero) {
  for (const auto& cfg : {SchedulerConfig::hallo_inference(), SchedulerConfig::hallo_train()}) {
    NoiseSchedule s(cfg);
    const auto& ac = s.alphas_cumprod();
    EXPECT_EQ(ac[999].item<float>(), 0.0f);
    EXPECT_EQ(s.betas()[999].item<float>(), 1.0f);
    // The first value is kept (up to float32 rounding of the rescale).
    EXPECT_NEAR(ac[0].item<double>(), 0.99915, 2e-7);
    EXPECT_GT(ac[998].item<float>(), 0.0f);
  }
  // Without the rescale the terminal SNR is positive.
  EXPECT_GT(NoiseSchedule(SchedulerConfig::sd15()).alphas_cumprod()[999].item<float>(), 0.004f);
}

TEST(NoiseSchedule, RescaleAlgorithmOnASmallSchedule) {
  // Alg. 1 by hand for betas {0.1, 0.2, 0.3}: sqrt(abar) = {s0, s1, s2} -> (s - s2) * s0 / (s0 - s2).
  const at::Tensor betas = at::tensor(std::vector<float>{0.1f, 0.2f, 0.3f});
  const at::Tensor out = rescale_zero_terminal_snr(betas).to(at::kDouble);
  const double s0 = std::sqrt(0.9), s1 = std::sqrt(0.72), s2 = std::sqrt(0.504);
  const double n0 = s0, n1 = (s1 - s2) * s0 / (s0 - s2);
  EXPECT_NEAR(out[0].item<double>(), 1 - n0 * n0, 1e-6);
  EXPECT_NEAR(out[1].item<double>(), 1 - (n1 * n1) / (n0 * n0), 1e-6);
  EXPECT_EQ(out[2].item<double>(), 1.0);
}

TEST(NoiseSchedule, SnrIsMonotoneDecreasing) {
  for (const auto& cfg : {SchedulerConfig::sd15(), SchedulerConfig::hallo_inference(), SchedulerConfig::hallo_train()}) {
    NoiseSchedule s(cfg);
    const at::Tensor snr = s.snr(at::arange(1000, at::kLong));
    ASSERT_EQ(snr.sizes(), at::IntArrayRef({1000}));
    EXPECT_TRUE((snr.slice(0, 1) < snr.slice(0, 0, 999)).all().item<bool>());
    const double ab = s.alphas_cumprod()[10].item<double>();
    EXPECT_NEAR(snr[10].item<double>(), ab / (1 - ab), 1e-4 * ab / (1 - ab));
  }
  EXPECT_EQ(NoiseSchedule(SchedulerConfig::hallo_inference()).snr(at::tensor(std::vector<int64_t>{999})).item<float>(), 0.0f);
  // Keeps the timesteps' shape.
  EXPECT_EQ(NoiseSchedule(SchedulerConfig::sd15()).snr(at::zeros({2, 3}, at::kLong)).sizes(), at::IntArrayRef({2, 3}));
}

TEST(NoiseSchedule, AddNoiseAndVelocityIdentitiesOnVideos) {
  NoiseSchedule s(SchedulerConfig::hallo_train());
  at::manual_seed(0);
  const at::Tensor x0 = at::randn({3, 4, 2, 5, 6});  // [B,C,F,H,W]
  const at::Tensor eps = at::randn({3, 4, 2, 5, 6});
  const at::Tensor t = at::tensor(std::vector<int64_t>{0, 500, 999});
  const at::Tensor xt = s.add_noise(x0, eps, t);
  const at::Tensor v = s.get_velocity(x0, eps, t);
  ASSERT_EQ(xt.sizes(), x0.sizes());
  for (int b = 0; b < 3; ++b) {
    const double ab = s.alphas_cumprod()[to_vec(t)[b]].item<double>();
    const double sa = std::sqrt(ab), sb = std::sqrt(1 - ab);
    EXPECT_LT(max_abs_diff(xt[b], sa * x0[b].to(at::kDouble) + sb * eps[b].to(at::kDouble)), 1e-5);
    EXPECT_LT(max_abs_diff(v[b], sa * eps[b].to(at::kDouble) - sb * x0[b].to(at::kDouble)), 1e-5);
    // x0 = sqrt(ab) x_t - sqrt(1-ab) v and eps = sqrt(1-ab) x_t + sqrt(ab) v.
    EXPECT_LT(max_abs_diff(sa * xt[b] - sb * v[b], x0[b]), 1e-5);
    EXPECT_LT(max_abs_diff(sb * xt[b] + sa * v[b], eps[b]), 1e-5);
  }
  // Zero SNR: at t = T-1 the noisy sample is pure noise and v = -x0.
  EXPECT_EQ(max_abs_diff(xt[2], eps[2]), 0.0);
  EXPECT_EQ(max_abs_diff(v[2], -x0[2]), 0.0);
  // One timestep for the whole batch; 4-D images.
  const at::Tensor img = at::randn({2, 4, 3, 3});
  const at::Tensor one = s.add_noise(img, img, at::scalar_tensor(7, at::kLong));
  const double ab7 = s.alphas_cumprod()[7].item<double>();
  EXPECT_LT(max_abs_diff(one, (std::sqrt(ab7) + std::sqrt(1 - ab7)) * img.to(at::kDouble)), 1e-5);
}

TEST(NoiseSchedule, AddNoiseRejectsMismatchedInputs) {
  NoiseSchedule s(SchedulerConfig::sd15());
  const at::Tensor x = at::zeros({2, 4, 3, 3});
  expect_error([&] { s.add_noise(x, x, at::zeros({3}, at::kLong)); }, {"3 timesteps for a batch of 2"});
  expect_error([&] { s.add_noise(x, x, at::zeros({2})); }, {"integer tensor"});
  expect_error([&] { s.get_velocity(x, at::zeros({2, 4, 3, 2}), at::zeros({2}, at::kLong)); }, {"noise shape"});
}

// ---------------------------------------------------------------- timesteps

TEST(DDIMTimesteps, LeadingWithOffsetSd15) {
  EXPECT_EQ(timesteps_for(SchedulerConfig::sd15(), TimestepSpacing::Leading, 10),
            (std::vector<int64_t>{901, 801, 701, 601, 501, 401, 301, 201, 101, 1}));
  // 1000 // 3 = 333: {666, 333, 0} + 1.
  EXPECT_EQ(timesteps_for(SchedulerConfig::sd15(), TimestepSpacing::Leading, 3), (std::vector<int64_t>{667, 334, 1}));
}

TEST(DDIMTimesteps, Trailing) {
  std::vector<int64_t> want;
  for (int i = 0; i < 40; ++i) want.push_back(999 - 25 * i);  // 999, 974, ..., 24
  EXPECT_EQ(timesteps_for(SchedulerConfig::hallo_inference(), TimestepSpacing::Trailing, 40), want);
  // 1000/30 = 33.33: round(1000 - 33.33 k) - 1 -> 999, 966, 932, 899, ..., 32.
  const auto t30 = timesteps_for(SchedulerConfig::hallo_inference(), TimestepSpacing::Trailing, 30);
  ASSERT_EQ(t30.size(), 30u);
  EXPECT_EQ((std::vector<int64_t>(t30.begin(), t30.begin() + 4)), (std::vector<int64_t>{999, 966, 932, 899}));
  EXPECT_EQ(t30.back(), 32);
  // numpy's arange length ceil(1000 / (1000/61)) = ceil(61.00000000000001) = 62: diffusers
  // then returns 62 timesteps, the last being -1. Reproduced on purpose.
  const auto t61 = timesteps_for(SchedulerConfig::hallo_inference(), TimestepSpacing::Trailing, 61);
  ASSERT_EQ(t61.size(), 62u);
  EXPECT_EQ((std::vector<int64_t>(t61.end() - 3, t61.end())), (std::vector<int64_t>{32, 15, -1}));
}

TEST(DDIMTimesteps, LinspaceRoundsHalfToEven) {
  EXPECT_EQ(timesteps_for(SchedulerConfig::sd15(), TimestepSpacing::Linspace, 10),
            (std::vector<int64_t>{999, 888, 777, 666, 555, 444, 333, 222, 111, 0}));
  // 999/6 = 166.5: 166.5 -> 166, 499.5 -> 500, 832.5 -> 832 (numpy rounds half to even).
  EXPECT_EQ(timesteps_for(SchedulerConfig::sd15(), TimestepSpacing::Linspace, 7),
            (std::vector<int64_t>{999, 832, 666, 500, 333, 166, 0}));
  EXPECT_EQ(timesteps_for(SchedulerConfig::sd15(), TimestepSpacing::Linspace, 1), (std::vector<int64_t>{0}));
}

TEST(DDIMTimesteps, TooManyStepsIsAnError) {
  DDIMScheduler s(SchedulerConfig::sd15(), "scheduler_config.json");
  expect_error([&] { s.set_timesteps(1001); }, {"scheduler_config.json", "1001", "num_train_timesteps 1000"});
  expect_error([&] { s.set_timesteps(0); }, {"expected >= 1"});
  // Leading + offset with n == T gives timestep 1000, which diffusers cannot step either.
  s.set_timesteps(1000);
  EXPECT_EQ(to_vec(s.timesteps()).front(), 1000);
  const at::Tensor x = at::zeros({1, 4, 2, 2});
  expect_error([&] { s.step(x, 1000, x); }, {"timestep 1000 is outside"});
}

// ---------------------------------------------------------------- DDIM step

TEST(DDIMStep, EpsilonOracleRecoversX0InOneStep) {
  SchedulerConfig cfg = SchedulerConfig::sd15();
  cfg.set_alpha_to_one = true;  // final alpha 1: the last step lands exactly on x_0
  DDIMScheduler s(cfg);
  s.set_timesteps(1);
  at::manual_seed(1);
  const at::Tensor x0 = at::randn({2, 4, 8, 8}), eps = at::randn({2, 4, 8, 8});
  for (int64_t t : {1, 500, 999}) {
    const at::Tensor xt = s.schedule().add_noise(x0, eps, at::full({2}, t, at::kLong));
    const DDIMStepOutput out = s.step(eps, t, xt);
    EXPECT_LT(max_abs_diff(out.pred_original_sample, x0), 1e-4) << "t=" << t;
    EXPECT_LT(max_abs_diff(out.prev_sample, x0), 1e-4) << "t=" << t;
  }
}

TEST(DDIMStep, VPredictionOracleRecoversX0EvenAtZeroSnr) {
  DDIMScheduler s(SchedulerConfig::hallo_inference());
  s.set_timesteps(1);  // trailing: {999}, where alphas_cumprod is exactly 0
  EXPECT_EQ(to_vec(s.timesteps()), (std::vector<int64_t>{999}));
  at::manual_seed(2);
  const at::Tensor x0 = at::randn({1, 4, 3, 8, 8}), eps = at::randn({1, 4, 3, 8, 8});
  for (int64_t t : {999, 400}) {
    const at::Tensor tt = at::full({1}, t, at::kLong);
    const at::Tensor xt = s.schedule().add_noise(x0, eps, tt);
    const DDIMStepOutput out = s.step(s.schedule().get_velocity(x0, eps, tt), t, xt);
    EXPECT_LT(max_abs_diff(out.pred_original_sample, x0), 1e-5) << "t=" << t;
    EXPECT_LT(max_abs_diff(out.prev_sample, x0), 1e-5) << "t=" << t;
  }
}

TEST(DDIMStep, IntermediateStepMatchesFormula12) {
  // sample prediction, leading 10 steps: t = 501 -> prev 401.
  SchedulerConfig cfg = SchedulerConfig::sd15();
  cfg.prediction_type = PredictionType::Sample;
  DDIMScheduler s(cfg);
  s.set_timesteps(10);
  at::manual_seed(3);
  const at::Tensor x0 = at::randn({1, 4, 4, 4}), xt = at::randn({1, 4, 4, 4});
  const DDIMStepOutput out = s.step(x0, 501, xt);
  const double a = s.alphas_cumprod()[501].item<double>(), ap = s.alphas_cumprod()[401].item<double>();
  const at::Tensor eps = (xt.to(at::kDouble) - std::sqrt(a) * x0.to(at::kDouble)) / std::sqrt(1 - a);
  EXPECT_LT(max_abs_diff(out.prev_sample, std::sqrt(ap) * x0.to(at::kDouble) + std::sqrt(1 - ap) * eps), 1e-5);
  EXPECT_TRUE(out.pred_original_sample.equal(x0));
}

TEST(DDIMStep, EtaAddsPosteriorNoise) {
  DDIMScheduler s(SchedulerConfig::sd15());
  s.set_timesteps(10);
  at::manual_seed(4);
  const at::Tensor mo = at::randn({1, 4, 4, 4}), x = at::randn({1, 4, 4, 4}), z = at::randn({1, 4, 4, 4});
  const DDIMStepOutput det = s.step(mo, 501, x);
  DDIMStepOptions opt;
  opt.eta = 1.0;
  opt.variance_noise = z;
  const DDIMStepOutput sto = s.step(mo, 501, x, opt);
  const double a = s.alphas_cumprod()[501].item<double>(), ap = s.alphas_cumprod()[401].item<double>();
  const double var = (1 - ap) / (1 - a) * (1 - a / ap);
  // With eta = 1 the direction term shrinks to sqrt(1 - ap - var) and sigma * z is added.
  const at::Tensor x0 = sto.pred_original_sample.to(at::kDouble);
  const at::Tensor eps = mo.to(at::kDouble);
  EXPECT_LT(max_abs_diff(sto.prev_sample, std::sqrt(ap) * x0 + std::sqrt(1 - ap - var) * eps + std::sqrt(var) * z.to(at::kDouble)), 1e-5);
  EXPECT_GT(max_abs_diff(sto.prev_sample, det.prev_sample), 1e-3);
  // Same generator seed, same draw; both noise sources at once is an error.
  DDIMStepOptions g1, g2;
  g1.eta = g2.eta = 0.5;
  g1.generator = at::detail::createCPUGenerator(123);
  g2.generator = at::detail::createCPUGenerator(123);
  EXPECT_TRUE(s.step(mo, 501, x, g1).prev_sample.equal(s.step(mo, 501, x, g2).prev_sample));
  g1.variance_noise = z;
  expect_error([&] { s.step(mo, 501, x, g1); }, {"either a generator or variance_noise"});
}

TEST(DDIMStep, ClipSampleAndClippedModelOutput) {
  SchedulerConfig cfg = SchedulerConfig::sd15();
  cfg.clip_sample = true;
  cfg.clip_sample_range = 0.5;
  cfg.prediction_type = PredictionType::Sample;
  DDIMScheduler s(cfg);
  s.set_timesteps(10);
  const at::Tensor x0 = at::full({1, 1, 2, 2}, 3.0f), xt = at::zeros({1, 1, 2, 2});
  EXPECT_EQ(s.step(x0, 501, xt).pred_original_sample.max().item<float>(), 0.5f);
  // eps comes from the unclipped x0 unless use_clipped_model_output re-derives it.
  const double a = s.alphas_cumprod()[501].item<double>(), ap = s.alphas_cumprod()[401].item<double>();
  auto prev_for = [&](double eps_x0) { return std::sqrt(ap) * 0.5 + std::sqrt(1 - ap) * (-std::sqrt(a) * eps_x0 / std::sqrt(1 - a)); };
  EXPECT_NEAR(s.step(x0, 501, xt).prev_sample[0][0][0][0].item<double>(), prev_for(3.0), 1e-5);
  DDIMStepOptions opt;
  opt.use_clipped_model_output = true;
  EXPECT_NEAR(s.step(x0, 501, xt, opt).prev_sample[0][0][0][0].item<double>(), prev_for(0.5), 1e-5);
}

TEST(DDIMStep, HalfPrecisionStaysHalf) {
  DDIMScheduler s(SchedulerConfig::hallo_inference());
  s.set_timesteps(40);
  const at::Tensor x = at::ones({1, 4, 2, 2, 2}, at::kHalf);
  const DDIMStepOutput out = s.step(x, 974, x);
  EXPECT_EQ(out.prev_sample.scalar_type(), at::kHalf);
  const DDIMStepOutput ref = s.step(x.to(at::kFloat), 974, x.to(at::kFloat));
  EXPECT_LT(max_abs_diff(out.prev_sample, ref.prev_sample), 1e-2);
}

TEST(DDIMStep, StepBeforeSetTimestepsIsAnError) {
  DDIMScheduler s(SchedulerConfig::sd15());
  const at::Tensor x = at::zeros({1, 4, 2, 2});
  expect_error([&] { s.step(x, 1, x); }, {"set_timesteps"});
  EXPECT_EQ(s.timesteps().size(0), 1000);
  EXPECT_FLOAT_EQ(s.final_alpha_cumprod().item<float>(), s.alphas_cumprod()[0].item<float>());
  EXPECT_EQ(DDIMScheduler(SchedulerConfig::hallo_inference()).final_alpha_cumprod().item<float>(), 1.0f);
}

// ---------------------------------------------------------------- config

TEST(SchedulerConfig, FromJsonDefaultsAndIgnoredKeys) {
  const auto c = SchedulerConfig::from_json(nlohmann::json::parse(
      R"({"_class_name":"PNDMScheduler","skip_prk_steps":true,"beta_schedule":"scaled_linear",
          "trained_betas":null,"steps_offset":1,"_harness":{"x":1}})"),
      "scheduler/scheduler_config.json");
  EXPECT_EQ(c.beta_schedule, BetaSchedule::ScaledLinear);
  EXPECT_EQ(c.steps_offset, 1);
  EXPECT_FALSE(c.trained_betas.has_value());
  // Everything else: the diffusers DDIMScheduler defaults.
  EXPECT_EQ(c.num_train_timesteps, 1000);
  EXPECT_DOUBLE_EQ(c.beta_start, 0.0001);
  EXPECT_DOUBLE_EQ(c.beta_end, 0.02);
  EXPECT_TRUE(c.clip_sample);
  EXPECT_TRUE(c.set_alpha_to_one);
  EXPECT_EQ(c.prediction_type, PredictionType::Epsilon);
  EXPECT_EQ(c.timestep_spacing, TimestepSpacing::Leading);
  EXPECT_FALSE(c.rescale_betas_zero_snr);
  EXPECT_EQ(SchedulerConfig::unknown_keys(nlohmann::json::parse(R"({"skip_prk_steps":true,"_x":1,"beta_end":1})"), "f"),
            (std::vector<std::string>{"skip_prk_steps"}));
  // to_json round-trips.
  const auto h = SchedulerConfig::hallo_inference();
  EXPECT_EQ(SchedulerConfig::from_json(h.to_json(), "x").to_json(), h.to_json());
}

TEST(SchedulerConfig, BadValuesNameFileAndField) {
  const std::string where = "configs/sched.json";
  auto parse = [&](const std::string& text) { return SchedulerConfig::from_json(nlohmann::json::parse(text), where); };
  expect_error([&] { parse(R"({"beta_schedule":"cosine"})"); }, {where, "'beta_schedule'", "cosine", "squaredcos_cap_v2"});
  expect_error([&] { parse(R"({"prediction_type":"x0"})"); }, {where, "'prediction_type'", "v_prediction"});
  expect_error([&] { parse(R"({"timestep_spacing":"uniform"})"); }, {where, "'timestep_spacing'", "trailing"});
  expect_error([&] { parse(R"({"thresholding":true})"); }, {where, "'thresholding'", "not supported"});
  expect_error([&] { parse(R"({"beta_end":1.5})"); }, {where, "'beta_end'", "[0, 1)"});
  expect_error([&] { parse(R"({"num_train_timesteps":0})"); }, {where, "'num_train_timesteps'"});
  expect_error([&] { parse(R"({"steps_offset":-1})"); }, {where, "'steps_offset'"});
  expect_error([&] { parse(R"({"clip_sample_range":0})"); }, {where, "'clip_sample_range'"});
  expect_error([&] { parse(R"({"trained_betas":[0.1,0.2]})"); }, {where, "'trained_betas'", "2 values", "1000"});
  expect_error([&] { parse(R"({"clip_sample":"yes"})"); }, {where, "'clip_sample'", "expected a boolean"});
  expect_error([&] { parse(R"({"beta_schedule":3})"); }, {where, "'beta_schedule'", "expected a string"});
}

// ---------------------------------------------------------------- goldens

namespace {

class DDIMGolden : public ::testing::TestWithParam<const char*> {};

void expect_close(const std::string& key, const at::Tensor& got, const at::Tensor& want, double& worst) {
  ASSERT_EQ(got.sizes(), want.sizes()) << key;
  const double ref = want.to(at::kDouble).abs().max().item<double>();
  const double rel = max_abs_diff(got, want) / (ref > 0 ? ref : 1.0);
  worst = std::max(worst, rel);
  EXPECT_LE(rel, 1e-5) << key;
}

}  // namespace

TEST_P(DDIMGolden, MatchesDiffusers) {
  const std::string name = GetParam();
  const auto dir = hallo::test::golden_dir();
  const auto cfg_path = dir / (name + ".config.json"), io_path = dir / (name + ".io.safetensors");
  if (!std::filesystem::exists(cfg_path) || !std::filesystem::exists(io_path)) GTEST_SKIP() << "no golden " << name;
  const auto cfg = SchedulerConfig::from_json(hallo::io::load_json_file(cfg_path), cfg_path.string());
  const auto io = hallo::io::StateDict::open(io_path);

  DDIMScheduler s(cfg, cfg_path.string());
  s.set_timesteps(static_cast<int>(io.tensor("in.num_inference_steps").item<int64_t>()));
  ASSERT_TRUE(s.timesteps().equal(io.tensor("out.timesteps"))) << s.timesteps() << io.tensor("out.timesteps");

  double worst = 0;
  expect_close("out.alphas_cumprod", s.alphas_cumprod(), io.tensor("out.alphas_cumprod"), worst);
  expect_close("out.final_alpha_cumprod", s.final_alpha_cumprod(), io.tensor("out.final_alpha_cumprod"), worst);
  expect_close("out.init_noise_sigma", at::scalar_tensor(s.init_noise_sigma(), at::kFloat), io.tensor("out.init_noise_sigma"), worst);
  at::Tensor x = io.tensor("in.sample");
  const auto ts = to_vec(s.timesteps());
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string k = std::to_string(i);
    const at::Tensor in = s.scale_model_input(x, ts[i]);
    expect_close("out.scaled_model_input." + k, in, io.tensor("out.scaled_model_input." + k), worst);
    const DDIMStepOutput out = s.step(io.tensor("in.model_output." + k), ts[i], x);
    expect_close("out.prev_sample." + k, out.prev_sample, io.tensor("out.prev_sample." + k), worst);
    expect_close("out.pred_original_sample." + k, out.pred_original_sample, io.tensor("out.pred_original_sample." + k), worst);
    x = out.prev_sample;
  }
  std::cout << "[golden " << name << "] " << ts.size() << " steps, max rel diff " << worst << "\n";
  RecordProperty("max_rel_diff", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(Schedulers, DDIMGolden, ::testing::Values("ddim_sd15", "ddim_hallo", "ddim_hallo_train_sched"));

TEST(DDIMGoldenConfig, PresetsMatchTheRecordedConfigs) {
  const auto dir = hallo::test::golden_dir();
  const std::pair<const char*, SchedulerConfig> cases[] = {{"ddim_sd15", SchedulerConfig::sd15()},
                                                           {"ddim_hallo", SchedulerConfig::hallo_inference()},
                                                           {"ddim_hallo_train_sched", SchedulerConfig::hallo_train()}};
  for (const auto& [name, preset] : cases) {
    const auto path = dir / (std::string(name) + ".config.json");
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no golden " << name;
    const auto j = hallo::io::load_json_file(path);
    EXPECT_EQ(SchedulerConfig::from_json(j, path.string()).to_json(), preset.to_json()) << name;
    EXPECT_TRUE(SchedulerConfig::unknown_keys(j, path.string()).empty()) << name;
  }
}
