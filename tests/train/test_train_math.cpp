// The small numeric pieces of training, each against an independent formula:
// min-SNR loss, AdamW (torch's update), gradient clipping, LR schedules,
// condition-dropout rates, and the TensorBoard record checksum.
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>

#include "core/error.h"
#include "losses/diffusion_loss.h"
#include "model/nn/autocast.h"
#include "losses/vae_loss.h"
#include "trainer/adamw.h"
#include "trainer/batch.h"
#include "trainer/gradients.h"
#include "trainer/lr_schedule.h"
#include "trainer/step_rng.h"
#include "trainer/tb_events.h"

namespace hallo::trainer {
namespace {

TEST(DiffusionLoss, MinSnrWeightsFollowTheFormula) {
  const at::Tensor snr = at::tensor({0.01f, 1.0f, 4.0f, 9.0f, 1000.0f});
  const at::Tensor w = losses::min_snr_weights(snr, 5.0, /*v_prediction=*/true);
  for (int64_t i = 0; i < snr.numel(); ++i) {
    const double s = snr[i].item<double>() + 1.0;
    EXPECT_NEAR(w[i].item<double>(), std::min(s, 5.0) / s, 1e-7) << i;
  }
  const at::Tensor we = losses::min_snr_weights(snr, 5.0, /*v_prediction=*/false);
  EXPECT_NEAR(we[4].item<double>(), 5.0 / 1000.0, 1e-9);
  EXPECT_NEAR(we[0].item<double>(), 1.0, 1e-9);
}

TEST(DiffusionLoss, PerSampleWeightingDiffersFromUpstreamStage2Averaging) {
  at::manual_seed(3);
  const at::Tensor pred = at::randn({3, 4, 2, 5, 5}), target = at::randn({3, 4, 2, 5, 5});
  const at::Tensor snr = at::tensor({0.5f, 3.0f, 40.0f});
  losses::DiffusionLossConfig c;
  const auto per = losses::diffusion_loss(pred, target, snr, c);
  const at::Tensor mse_b = (pred - target).pow(2).mean({1, 2, 3, 4}).to(at::kDouble);
  const at::Tensor w = per.weights.to(at::kDouble);
  EXPECT_NEAR(per.loss.item<double>(), (mse_b * w).mean().item<double>(), 1e-6);
  c.average_before_weighting = true;
  const auto avg = losses::diffusion_loss(pred, target, snr, c);
  EXPECT_NEAR(avg.loss.item<double>(), (mse_b.mean() * w.mean()).item<double>(), 1e-6);
  EXPECT_GT(std::abs(avg.loss.item<double>() - per.loss.item<double>()), 1e-3);
  c.snr_gamma = 0;  // plain MSE
  EXPECT_NEAR(losses::diffusion_loss(pred, target, snr, c).loss.item<double>(), mse_b.mean().item<double>(), 1e-6);
}

TEST(DiffusionLoss, OffsetNoiseIsOneValuePerSampleAndChannel) {
  const at::Tensor base = at::zeros({2, 3, 4, 5, 5}), off = at::randn({2, 3, 1, 1, 1});
  const at::Tensor n = losses::offset_noise(base, off, 0.05);
  EXPECT_TRUE(at::allclose(n, (0.05 * off).expand_as(n)));
}

// Our AdamW against libtorch's torch::optim::AdamW (the same torch formula, op by op):
// equal to float rounding over several steps, with weight decay and a parameter that
// skips a step (no decay, no state change).
TEST(VaeLoss, L1PlusScaledKlAgainstAHandComputation) {
  // One image of 3x2x2 pixels, a 1x1x2 latent: every term by hand.
  const at::Tensor x = at::tensor({0.5f, -0.5f, 1.0f, 0.0f, 0.2f, 0.2f, 0.2f, 0.2f, -1.f, 1.f, 0.f, 0.f}).reshape({1, 3, 2, 2});
  const at::Tensor xh = at::zeros({1, 3, 2, 2});
  model::DiagonalGaussian post;
  post.mean = at::tensor({1.0f, 0.0f}).reshape({1, 1, 1, 2});
  post.logvar = at::tensor({0.0f, std::log(4.0f)}).reshape({1, 1, 1, 2});
  losses::VaeLossConfig c;
  c.kl_weight = 0.5;
  const auto t = losses::vae_loss(x, xh, post, at::Tensor(), c);
  const double l1 = (0.5 + 0.5 + 1.0 + 0.0 + 0.8 + 2.0) / 12.0;
  // KL per element: (mu^2 + var - 1 - log var) / 2 -> 0.5 and (4 - 1 - log 4) / 2.
  const double kl = 0.5 + (3.0 - std::log(4.0)) / 2.0;
  EXPECT_NEAR(t.recon.item<double>(), l1, 1e-6);
  EXPECT_NEAR(t.kl.item<double>(), kl, 1e-6);
  EXPECT_NEAR(t.loss.item<double>(), l1 + 0.5 * kl / 12.0, 1e-6);
  // Face weighting: pixels inside the mask count 1 + face_weight times.
  c.face_weight = 2.0;
  const at::Tensor face = at::tensor({1.f, 0.f, 0.f, 0.f}).reshape({1, 1, 2, 2});
  const auto tf = losses::vae_loss(x, xh, post, face, c);
  const double weighted = (3 * 0.5 + 0.5 + 1.0 + 0.0 + 3 * 0.2 + 0.2 + 0.2 + 0.2 + 3 * 1.0 + 1.0) / 12.0;
  EXPECT_NEAR(tf.loss.item<double>(), weighted + 0.5 * kl / 12.0, 1e-6);
  EXPECT_NEAR(tf.recon.item<double>(), l1, 1e-6);  // logged unweighted
}

TEST(Autocast, GuardRunsMatmulsInBf16AndRestoresTheState) {
  const at::Tensor a = at::randn({8, 8}), b = at::randn({8, 8});
  EXPECT_EQ(at::mm(a, b).scalar_type(), at::kFloat);
  {
    nn::AutocastGuard g(c10::DeviceType::CPU, at::kBFloat16);
    EXPECT_EQ(at::mm(a, b).scalar_type(), at::kBFloat16);
    {
      nn::AutocastGuard off(c10::DeviceType::CPU, at::kBFloat16, /*enabled=*/false);  // a no-op guard
      EXPECT_EQ(at::mm(a, b).scalar_type(), at::kBFloat16);
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(at::mm(a, b).scalar_type(), at::kFloat);
  EXPECT_THROW(nn::AutocastGuard(c10::DeviceType::CPU, at::kHalf), Error);  // CPU autocast: bf16 only
  EXPECT_EQ(nn::mixed_precision_dtype("bf16"), at::kBFloat16);
  EXPECT_EQ(nn::mixed_precision_dtype("no"), at::kFloat);
  EXPECT_THROW(nn::mixed_precision_dtype("fp8"), Error);
}

TEST(AdamW, MatchesLibtorch) {
  at::manual_seed(7);
  std::vector<at::Tensor> a = {at::randn({5, 3}), at::randn({7})}, b;
  for (auto& t : a) b.push_back(t.clone());
  for (auto& t : a) t.set_requires_grad(true);
  for (auto& t : b) t.set_requires_grad(true);
  std::vector<NamedParam> ours = {{"w", a[0]}, {"v", a[1]}};
  AdamW opt({0.9, 0.999, 1e-8, 0.01});
  torch::optim::AdamW ref(b, torch::optim::AdamWOptions(1e-3).betas({0.9, 0.999}).eps(1e-8).weight_decay(0.01));
  for (int step = 0; step < 5; ++step) {
    for (size_t i = 0; i < a.size(); ++i) {
      const bool skip = (i == 1 && step == 2);  // no gradient this step: no decay, no state change
      const at::Tensor g = at::randn(a[i].sizes());
      a[i].mutable_grad() = skip ? at::Tensor() : g.clone();
      b[i].mutable_grad() = skip ? at::Tensor() : g.clone();
    }
    opt.step(ours, 1e-3);
    ref.step();
  }
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(at::allclose(a[i], b[i], 1e-6, 1e-7)) << i << " max diff " << (a[i] - b[i]).abs().max().item<double>();
  EXPECT_EQ(opt.state().at("w").step, 5);
  EXPECT_EQ(opt.state().at("v").step, 4);
}

TEST(AdamW, FirstStepIsLrTimesSignPlusDecay) {
  at::Tensor p = at::full({4}, 2.0f);
  p.set_requires_grad(true);
  p.mutable_grad() = at::tensor({1.0f, -3.0f, 1e-3f, -2e-2f});
  AdamW opt({0.9, 0.999, 1e-8, 0.01});
  opt.step({{"p", p}}, 0.1);
  const float decayed = 2.0f * (1.0f - 0.1f * 0.01f);
  EXPECT_NEAR(p[0].item<float>(), decayed - 0.1f, 1e-6);
  EXPECT_NEAR(p[1].item<float>(), decayed + 0.1f, 1e-6);
  EXPECT_NEAR(p[2].item<float>(), decayed - 0.1f, 1e-5);
}

TEST(ClipGradNorm, ScalesToTheMaxNormLikeTorch) {
  at::Tensor a = at::zeros({3}), b = at::zeros({2});
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  a.mutable_grad() = at::tensor({3.0f, 0.0f, 0.0f});
  b.mutable_grad() = at::tensor({0.0f, 4.0f});
  std::vector<NamedParam> ps = {{"a", a}, {"b", b}};
  const ClipResult r = clip_grad_norm(ps, 1.0);
  EXPECT_NEAR(r.total_norm, 5.0, 1e-6);
  EXPECT_NEAR(r.coef, 1.0 / (5.0 + 1e-6), 1e-7);
  EXPECT_NEAR(at::norm(at::cat({a.grad(), b.grad()})).item<double>(), 1.0, 1e-5);
  // Below the limit nothing changes (coef clamps to 1).
  const ClipResult r2 = clip_grad_norm(ps, 10.0);
  EXPECT_EQ(r2.coef, 1.0);
  EXPECT_NEAR(r2.total_norm, 1.0, 1e-5);
  // A non-finite gradient shows in the norm and is named.
  b.mutable_grad()[0] = std::nanf("");
  EXPECT_FALSE(std::isfinite(clip_grad_norm(ps, 0.0).total_norm));
  EXPECT_EQ(first_nonfinite(ps), "b (gradient)");
}

TEST(LrSchedule, MatchesDiffusersLambdas) {
  LrSchedule s;
  s.base_lr = 1.0;
  s.kind = "constant";
  EXPECT_EQ(s.lr_at(1), 1.0);
  s.kind = "constant_with_warmup";
  s.warmup_steps = 4;
  EXPECT_EQ(s.lr_at(1), 0.0);  // step 1 uses lambda(0)
  EXPECT_EQ(s.lr_at(3), 0.5);
  EXPECT_EQ(s.lr_at(9), 1.0);
  s.kind = "linear";
  s.total_steps = 14;
  EXPECT_DOUBLE_EQ(s.lr_at(5), 1.0);          // lambda(4) = (14-4)/(14-4)
  EXPECT_DOUBLE_EQ(s.lr_at(10), 5.0 / 10.0);  // lambda(9)
  EXPECT_DOUBLE_EQ(s.lr_at(20), 0.0);
  s.kind = "cosine";
  EXPECT_DOUBLE_EQ(s.lr_at(5), 1.0);
  EXPECT_NEAR(s.lr_at(10), 0.5 * (1 + std::cos(M_PI * 0.5 * 2 * 0.5)), 1e-12);
  EXPECT_NEAR(s.lr_at(15), 0.0, 1e-12);
  s.kind = "bogus";
  EXPECT_THROW(s.lr_at(1), std::exception);
}

// Over many steps the training RNG drops each condition at its configured rate
// (binomial bound: within 5 standard deviations), through the real draw + decide path.
TEST(ConditionDropout, RatesMatchTheConfigOverManySteps) {
  const DropoutRatios r{0.1, 0.05, 0.05, 0.05};
  const int n = 20000;
  for (int stage : {1, 2}) {
    StepRng rng(42, 0);
    DrawShape s;
    s.stage = stage;
    s.batch = 1;
    s.frames = 1;
    s.ref_frames = 1;
    s.channels = 1;
    s.height = s.width = 1;
    int c0 = 0, c1 = 0, c2 = 0, both = 0;
    for (int i = 0; i < n; ++i) {
      const StepDecisions d = decide(stage, r, rng.draw(s).uniforms);
      c0 += stage == 1 ? d.uncond_fwd : d.uncond_img;
      c1 += d.uncond_audio;
      c2 += d.start_frame;
      both += d.uncond_img && d.uncond_audio;
    }
    auto within = [&](int count, double p, const char* what) {
      const double sd = std::sqrt(n * p * (1 - p));
      EXPECT_NEAR(count, n * p, 5 * sd) << "stage " << stage << " " << what;
    };
    if (stage == 1) {
      within(c0, 0.1, "uncond");
      EXPECT_EQ(c1 + c2, 0);
    } else {
      within(c0, 0.05, "image");
      within(c1, 0.05, "audio");
      within(c2, 0.05, "start frame");
      within(both, 0.05 * 0.05, "image and audio (independent)");
    }
  }
}

TEST(StepRng, StateRoundTripsAndSeedsDiffer) {
  DrawShape s;
  s.batch = 2;
  s.frames = 3;
  s.ref_frames = 3;
  s.channels = 4;
  s.height = s.width = 4;
  StepRng a(1, 0), b(1, 0), c(1, 1);
  a.draw(s);
  const at::Tensor st = a.state();
  const StepDraws next = a.draw(s);
  b.set_state(st);
  const StepDraws again = b.draw(s);
  EXPECT_TRUE(at::equal(next.noise_base, again.noise_base));
  EXPECT_TRUE(at::equal(next.timesteps, again.timesteps));
  EXPECT_EQ(next.uniforms, again.uniforms);
  EXPECT_FALSE(at::equal(c.draw(s).noise_base, StepRng(1, 0).draw(s).noise_base));  // ranks differ
  EXPECT_EQ(next.latent_eps.sizes(), (std::vector<int64_t>{6, 4, 4, 4}));
  EXPECT_EQ(next.ref_latent_eps.sizes(), (std::vector<int64_t>{6, 4, 4, 4}));
  EXPECT_LT(next.timesteps.max().item<int64_t>(), 1000);
}

TEST(TensorBoard, Crc32cMatchesTheStandardCheckValue) {
  const char* s = "123456789";
  EXPECT_EQ(crc32c(s, 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
}

}  // namespace
}  // namespace hallo::trainer
