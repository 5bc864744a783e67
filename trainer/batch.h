#pragma once
// What one training step consumes, independent of where it came from (the HDF5
// samplers, a golden's recorded upstream batch, a test). Both stages use it:
// stage 1 has one target frame, no motion frames and no audio.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <array>
#include <string>
#include <vector>

namespace hallo::trainer {

constexpr int kMaskLevels = 4;

struct TrainBatch {
  // Targets: pixels [B, F, 3, H, W] in [-1, 1] (VAE-encoded on the fly), or their VAE
  // posterior mean/std [B, F, C, h, w] (stored by `hallo prepare --vae`). At least one.
  at::Tensor target_pixels, target_mean, target_std;
  // Reference frame then motion frames: pixels [B, S, 3, H, W] or posteriors [B, S, C, h, w],
  // S = 1 + n_motion_frames.
  at::Tensor ref_pixels, ref_mean, ref_std;
  at::Tensor face_region;  // [B, 3, H, W] face-locator mask (0..1), the same for every frame
  at::Tensor face_emb;     // [B, E] raw face embedding
  // Stage 2: region masks per latent level l (h_l = H / 8 / 2^l): [B, F, 1, h_l, w_l].
  std::array<at::Tensor, kMaskLevels> full_mask, face_mask, lip_mask;
  at::Tensor audio;  // stage 2: [B, F, window, layers, dim] audio feature windows

  int64_t batch() const;
  int64_t frames() const;      // F
  int64_t ref_frames() const;  // S
  // "(shard, clip)" of every element, for messages (optional).
  std::vector<std::string> sources;
  // Every tensor on `device` (the samplers produce CPU tensors; the step runs where the net is).
  TrainBatch to(const c10::Device& device) const;
};

// The random numbers of one step, drawn by StepRng in upstream's order or injected
// (the goldens record upstream's draws).
struct StepDraws {
  at::Tensor latent_eps;      // [B*F, C, h, w]: posterior sample noise of the targets
  at::Tensor noise_base;      // [B, C, F, h, w]
  at::Tensor noise_offset;    // [B, C, 1, 1, 1]
  at::Tensor timesteps;       // [B] int64
  std::vector<double> uniforms;  // condition-dropout draws (stage 1: 1, stage 2: 3)
  at::Tensor ref_latent_eps;  // [B*S, C, h, w]
  // Drawn on the CPU (a seed means the same numbers on any device), used on the net's device.
  StepDraws to(const c10::Device& device) const;
};

// Condition dropout, one decision for the whole batch (as upstream).
struct StepDecisions {
  bool uncond_fwd = false;    // stage 1: zero face embedding AND skip the reference net
  bool uncond_img = false;    // stage 2: skip the reference net
  bool uncond_audio = false;  // stage 2: zero audio tokens
  bool start_frame = false;   // stage 2: zero the motion frames' pixels
};

struct DropoutRatios {
  double uncond = 0.1;                                       // stage 1
  double uncond_img = 0.05, uncond_audio = 0.05, start = 0.05;  // stage 2
};

// Upstream: d < ratio for each draw, in the order above.
StepDecisions decide(int stage, const DropoutRatios& r, const std::vector<double>& uniforms);
int uniforms_per_step(int stage);

}  // namespace hallo::trainer
