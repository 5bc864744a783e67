#include "trainer/activation_estimate.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <fmt/format.h>

#include "core/cpu_allocator.h"
#include "core/error.h"
#include "trainer/step.h"
#include "trainer/step_rng.h"
#include "trainer/trainable.h"

namespace hallo::trainer {

TrainBatch random_step_batch(const TrainConfig& cfg, const DataShape& shape, int64_t B, int H, int W) {
  const bool stage2 = cfg.stage == 2;
  const int64_t F = stage2 ? cfg.data.n_sample_frames : 1, S = stage2 ? 1 + cfg.data.n_motion_frames : 1;
  const int64_t C = shape.latent_channels > 0 ? shape.latent_channels : 4;
  const int64_t h = H / 8, w = W / 8;
  TrainBatch b;
  b.target_mean = at::randn({B, F, C, h, w});
  b.target_std = at::rand({B, F, C, h, w}) * 0.1;
  b.ref_mean = at::randn({B, S, C, h, w});
  b.ref_std = at::rand({B, S, C, h, w}) * 0.1;
  b.face_region = (at::rand({B, 1, H, W}) > 0.5).to(at::kFloat).expand({-1, 3, -1, -1}).contiguous();
  b.face_emb = at::randn({B, shape.face_emb_dim});
  if (stage2) {
    for (int l = 0; l < kMaskLevels; ++l) {
      b.full_mask[l] = at::rand({B, F, 1, h >> l, w >> l});
      b.face_mask[l] = at::rand({B, F, 1, h >> l, w >> l});
      b.lip_mask[l] = at::rand({B, F, 1, h >> l, w >> l});
    }
    b.audio = at::randn({B, F, 2 * cfg.data.audio_margin + 1, shape.audio_layers, shape.audio_dim});
  }
  return b;
}

StepMemory measure_step_memory(const TrainConfig& cfg, const DataShape& shape, model::HalloNet& net, bool checkpointing,
                               int64_t batch, int height, int width, bool with_step_peak) {
  if (!cpu_memory_stats().tracked) fail("step memory measurement needs hallo's CPU allocator (install_cpu_allocator)");
  if (height % 64 || width % 64 || height <= 0 || width <= 0)
    fail("step memory measurement: {}x{} is not a positive multiple of 64", width, height);
  const bool stage2 = cfg.stage == 2;
  const int64_t F = stage2 ? cfg.data.n_sample_frames : 1, S = stage2 ? 1 + cfg.data.n_motion_frames : 1;
  const int64_t C = shape.latent_channels > 0 ? shape.latent_channels : 4;
  StepSettings s = step_settings(cfg);
  s.autocast = at::kFloat;  // measured on the CPU in float32 (an upper bound under autocast)
  apply_quirks(net, s.quirks, static_cast<int>(cfg.data.n_motion_frames));
  TrainableSet t = TrainableSet::select(net, cfg.stage, cfg.trainable_para, cfg.trainable_selection());
  net->train();
  if (stage2) net->reference_unet->eval();
  const nn::CheckpointPolicy saved = net->denoising_unet->checkpointing();
  net->denoising_unet->set_checkpointing(
      nn::CheckpointPolicy{checkpointing, s.quirks.reentrant_checkpoint_grads, cfg.solver.checkpoint_keep_blocks});

  at::manual_seed(static_cast<uint64_t>(cfg.seed));
  const TrainBatch b = random_step_batch(cfg, shape, batch, height, width);
  DrawShape ds;
  ds.stage = cfg.stage;
  ds.batch = batch;
  ds.frames = F;
  ds.ref_frames = S;
  ds.channels = C;
  ds.height = height / 8;
  ds.width = width / 8;
  const StepDraws draws = StepRng(static_cast<uint64_t>(cfg.seed), 0).draw(ds);
  StepModels m;
  m.net = net;
  m.schedule = sched::NoiseSchedule(cfg.train_scheduler());
  auto run = [&] {
    reset_cpu_memory_peak();
    const int64_t base = cpu_memory_stats().live;
    {
      ForwardResult r = forward_loss(m, s, b, draws, StepDecisions{});  // every condition on
      r.terms.loss.backward();
    }
    return cpu_memory_stats().peak - base;
  };
  StepMemory out;
  // The step peak as a trainer step has it (zero_grad leaves no gradient storage;
  // backward allocates each gradient when it gets there), then the activations
  // alone: gradients allocated beforehand, so backward only accumulates into them.
  if (with_step_peak) {
    out.step_peak = run();
    for (const auto& p : t.params())
      if (p.param.grad().defined())
        out.gradients += p.param.grad().numel() * static_cast<int64_t>(p.param.grad().element_size());
    t.zero_grad();
  }
  for (const auto& p : t.params()) p.param.mutable_grad() = at::zeros_like(p.param);
  out.activations = run();
  t.zero_grad();
  net->denoising_unet->set_checkpointing(saved);
  return out;
}

ActivationEstimate estimate_activations(const TrainConfig& cfg, const DataShape& shape, model::HalloNet& net) {
  ActivationEstimate e;
  if (!cpu_memory_stats().tracked) {
    e.why_not = "hallo's CPU allocator is not installed";
    return e;
  }
  if (cfg.stage != 1 && cfg.stage != 2) {
    e.why_not = fmt::format("stage {} has no UNet step", cfg.stage);
    return e;
  }
  const double px_small = static_cast<double>(e.probe_small) * e.probe_small;
  const double px_large = static_cast<double>(e.probe_large) * e.probe_large;
  const double px = static_cast<double>(cfg.data.train_width) * cfg.data.train_height;
  auto at_size = [&](double small, double large) {  // the line through both probes, at px
    return small + (large - small) / (px_large - px_small) * (px - px_small);
  };
  const double B = static_cast<double>(cfg.data.train_bs);
  for (int mode = 0; mode < 2; ++mode) {
    const bool ckpt = mode == 0;
    // The same parameters get gradients at any size and in either mode: one
    // progressive pass (the cheapest probe) counts them.
    const StepMemory a = measure_step_memory(cfg, shape, net, ckpt, 1, e.probe_small, e.probe_small, mode == 0);
    const StepMemory b = measure_step_memory(cfg, shape, net, ckpt, 1, e.probe_large, e.probe_large, false);
    e.activations[mode] = static_cast<int64_t>(B * at_size(static_cast<double>(a.activations), static_cast<double>(b.activations)));
    if (mode == 0) e.gradients = a.gradients;
  }
  e.measured = true;
  return e;
}

}  // namespace hallo::trainer
