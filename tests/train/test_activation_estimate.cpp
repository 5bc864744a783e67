// `hallo train --dry-run`'s step-memory estimate on the tiny random Hallo: the
// probe fit predicts a step measured at a size it never probed, and the step
// peak it reports is what a real second step adds above weights + AdamW state.
#include <gtest/gtest.h>

#include "core/cpu_allocator.h"
#include "tests/common/tiny_hallo.h"
#include "trainer/activation_estimate.h"
#include "trainer/adamw.h"
#include "trainer/gradients.h"
#include "trainer/model_setup.h"
#include "trainer/trainable.h"

namespace hallo::trainer {
namespace {

TEST(ActivationEstimate, PredictsAStepAtASizeItDidNotProbe) {
  ASSERT_TRUE(cpu_memory_stats().tracked);
  for (int stage : {1, 2}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    auto cfg = test::tiny_hallo_config(stage);
    cfg.data.train_bs = 2;
    cfg.data.train_width = cfg.data.train_height = 192;
    const auto shape = test::tiny_hallo_shape();
    ModelBundle b = build_models(cfg, shape, /*need_vae=*/false);
    const ActivationEstimate est = estimate_activations(cfg, shape, b.net);
    ASSERT_TRUE(est.measured) << est.why_not;
    for (int mode = 0; mode < 2; ++mode) {
      const StepMemory real = measure_step_memory(cfg, shape, b.net, mode == 0, 2, 192, 192);
      SCOPED_TRACE(mode == 0 ? "checkpointing on" : "checkpointing off");
      ASSERT_GT(real.activations, 0);
      EXPECT_NEAR(static_cast<double>(est.activations[mode]) / real.activations, 1.0, 0.15)
          << "predicted " << est.activations[mode] << " B, measured " << real.activations << " B";
      EXPECT_EQ(est.gradients, real.gradients);
      // The range the dry-run prints for the step peak holds at this size.
      EXPECT_LE(real.step_peak, est.step_peak_high(mode) * 115 / 100);
      EXPECT_GE(real.step_peak, est.step_peak_low(mode) * 85 / 100);
    }
    if (stage == 2) {
      EXPECT_LT(est.activations[0], est.activations[1] * 0.8);
    }
    // The probes leave the net as they found it: no gradients.
    for (const auto& p : b.net->parameters()) ASSERT_FALSE(p.grad().defined());
  }
}

// The probe's step peak is what a real optimization_step (the second, AdamW state
// allocated) adds above weights + AdamW state.
TEST(ActivationEstimate, TheStepPeakIsWhatARealStepAdds) {
  auto cfg = test::tiny_hallo_config(2);
  const auto shape = test::tiny_hallo_shape();
  ModelBundle bundle = build_models(cfg, shape, /*need_vae=*/true);
  StepModels m;
  m.net = bundle.net;
  m.vae = bundle.vae;
  m.schedule = sched::NoiseSchedule(cfg.train_scheduler());
  const StepSettings settings = step_settings(cfg);
  apply_quirks(m.net, settings.quirks, static_cast<int>(cfg.data.n_motion_frames));
  TrainableSet trainable = TrainableSet::select(m.net, 2, cfg.trainable_para);
  m.net->train();
  m.net->reference_unet->eval();
  m.net->denoising_unet->set_checkpointing({true, false, {}});
  AdamW opt({});
  LocalReducer reducer;
  Optimization o{&trainable, &opt, &reducer, 1.0};
  // Posteriors, not pixels: the estimate leaves the VAE out.
  at::manual_seed(4);
  const TrainBatch b = random_step_batch(cfg, shape, 2, 64, 64);
  optimization_step(m, settings, o, {test::tiny_micro_batch(b, 2)}, 1e-5);  // creates the AdamW state
  reset_cpu_memory_peak();
  const int64_t before = cpu_memory_stats().live;
  optimization_step(m, settings, o, {test::tiny_micro_batch(b, 2, 2)}, 1e-5);
  const int64_t added = cpu_memory_stats().peak - before;

  const StepMemory probe = measure_step_memory(cfg, shape, m.net, true, 2, 64, 64);
  EXPECT_NEAR(static_cast<double>(added) / probe.step_peak, 1.0, 0.05)
      << "a real step added " << added << " B, the probe's step peak is " << probe.step_peak << " B";
  EXPECT_EQ(opt.state_bytes(), 2 * probe.gradients) << "AdamW holds state for exactly the gradients produced";
}

}  // namespace
}  // namespace hallo::trainer
