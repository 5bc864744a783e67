#pragma once
// One optimisation step of Hallo training, the same code for `hallo train` and the
// one-step goldens (which feed it upstream's recorded batch and random draws):
//  forward_loss: latents (VAE posterior sample, as upstream, from stored posteriors or
//    encoded on the fly) -> offset noise -> add_noise at t -> v target -> projections,
//    face locator, reference net (write) -> denoising UNet (read) -> min-SNR loss;
//  optimization_step: forward_loss + backward over the micro-batches of gradient
//    accumulation -> gradient reduction -> clip -> AdamW.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "losses/diffusion_loss.h"
#include "model/hallo/hallo_net.h"
#include "model/schedulers/ddpm.h"
#include "model/vae/autoencoder_kl.h"
#include "trainer/adamw.h"
#include "trainer/batch.h"
#include "trainer/gradients.h"
#include "trainer/loss_scaler.h"
#include "trainer/train_config.h"
#include "trainer/trainable.h"

namespace hallo::trainer {

struct StepModels {
  model::HalloNet net{nullptr};
  model::AutoencoderKL vae{nullptr};  // null: every batch must carry posteriors
  sched::NoiseSchedule schedule{sched::SchedulerConfig::hallo_train()};
  double latent_scale = 0.18215;      // the VAE's scaling_factor
  // Posterior of an all-zero frame [C, h, w]: stage 2's start_frame zeroes the motion
  // frames' pixels, which stored posteriors cannot know (computed once with the VAE).
  at::Tensor zero_frame_mean, zero_frame_std;
};

struct StepSettings {
  int stage = 2;
  losses::DiffusionLossConfig loss;
  QuirkConfig quirks;
  double noise_offset = 0.05;
  int vae_chunk = 8;  // frames per VAE encode call (bounds activation memory)
  // solver.mixed_precision: Float (off) or the autocast dtype of the networks' forward.
  c10::ScalarType autocast = c10::ScalarType::Float;
};

// Settings a TrainConfig implies (also sets the UNet3D's quirk switches on `models`).
StepSettings step_settings(const TrainConfig& c);
void apply_quirks(model::HalloNet& net, const QuirkConfig& q, int n_motion_frames);

using StepRecord = std::map<std::string, at::Tensor>;

struct ForwardResult {
  losses::LossTerms terms;
  at::Tensor timesteps;  // [B]
};

// Forward and loss of one micro-batch; `rec` receives upstream-named intermediates.
ForwardResult forward_loss(StepModels& m, const StepSettings& s, const TrainBatch& batch, const StepDraws& draws,
                           const StepDecisions& decisions, StepRecord* rec = nullptr);

struct MicroBatch {
  TrainBatch batch;
  StepDraws draws;
  StepDecisions decisions;
};

// Sees the reduced gradients before clipping (goldens, tests, gradient statistics).
class GradientObserver {
 public:
  virtual ~GradientObserver() = default;
  virtual void on_gradients(const TrainableSet& trainable) = 0;
};

struct StepReport {
  double loss = 0;       // mean over micro-batches (upstream's logged train_loss)
  double grad_norm = 0;  // before clipping
  double clip_coef = 1;
  double lr = 0;
  bool applied = true;   // false: skipped because something was not finite
  std::string nonfinite; // what was not finite: "loss" or "gradients"
  // Loss scaling: the scale this step's backward used (1: none); overflow = finite loss,
  // gradients that overflowed the scale (skipped, scale lowered: normal under fp16).
  double loss_scale = 1;
  bool overflow = false;
  std::string nonfinite_param;  // first parameter whose gradient or value is not finite ("" if none)
  std::vector<double> sample_losses;    // weighted per-sample losses, all micro-batches
  std::vector<int64_t> sample_timesteps;
  std::vector<StepDecisions> decisions;
  double forward_s = 0, backward_s = 0, update_s = 0;  // wall time of the phases
};

struct Optimization {
  TrainableSet* trainable = nullptr;
  AdamW* optimizer = nullptr;
  GradientReducer* reducer = nullptr;
  double max_grad_norm = 1.0;
  // ZeRO-1 (optimizer state sharded): each parameter's owning rank (trainer/zero.h);
  // this rank updates its own, then every parameter is broadcast from its owner. Null: unsharded.
  const std::vector<int>* owners = nullptr;
  const std::vector<bool>* owned = nullptr;
  LossScaler* scaler = nullptr;  // null or disabled: backward on the plain loss
};

StepReport optimization_step(StepModels& m, const StepSettings& s, Optimization& o, const std::vector<MicroBatch>& micro,
                             double lr, GradientObserver* observer = nullptr, StepRecord* rec = nullptr);

// Latents of a batch's targets ([B, C, F, h, w], scaled) and references ([B*S, C, h, w],
// scaled), sampled from the posterior with the draws' eps. Exposed for tests.
struct Latents {
  at::Tensor target, ref;
};
Latents sample_latents(StepModels& m, const StepSettings& s, const TrainBatch& batch, const StepDraws& draws,
                       const StepDecisions& decisions, StepRecord* rec = nullptr);

}  // namespace hallo::trainer
