#pragma once
// Memory of one training micro-batch (forward + backward) at the configured
// batch, frames and size, for `hallo train --dry-run`: measured, not modelled.
// The step runs on the real networks at two small probe sizes (64 and 128 px,
// the configured frames, batch 1) with gradient checkpointing on and off; the
// bytes the allocator saw above the starting point are fitted as
// a + b * pixels and evaluated at train_width x train_height. Activations are
// linear in pixels here because attention never materialises its full score
// matrices (row-block kernels); the fit's error is checked by
// ActivationEstimate.PredictsAMeasuredStep.
//
// Not counted: the VAE encoding of pixel batches (no_grad, chunked, freed before
// the UNets run) and the reference net's cost in stage 2 beyond its bank.
#include <algorithm>
#include <cstdint>
#include <string>

#include "model/hallo/hallo_net.h"
#include "trainer/batch_source.h"
#include "trainer/train_config.h"

namespace hallo::trainer {

// Random inputs of `cfg`'s step at batch B and H x W pixels (frames as configured):
// VAE posteriors (no VAE needed), face region and embedding, stage-2 masks and
// audio windows. For measurements and benchmarks, not training.
TrainBatch random_step_batch(const TrainConfig& cfg, const DataShape& shape, int64_t B, int H, int W);

// One forward + backward, measured by the allocator above its starting point.
struct StepMemory {
  int64_t activations = 0;  // peak with every trainable gradient allocated beforehand
  int64_t step_peak = 0;    // peak with gradients appearing as backward produces them
  int64_t gradients = 0;    // bytes of the gradients backward produced
};

// Measures `cfg`'s stage at batch `batch`, frames as configured, `height` x
// `width` pixels (multiples of 64). `checkpointing` replaces
// solver.gradient_checkpointing. Without `with_step_peak` only the activations
// are measured (one pass instead of two; step_peak and gradients stay 0).
// Restores `net`'s checkpoint policy; parameters' gradients are left empty.
StepMemory measure_step_memory(const TrainConfig& cfg, const DataShape& shape, model::HalloNet& net, bool checkpointing,
                               int64_t batch, int height, int width, bool with_step_peak = true);

struct ActivationEstimate {
  bool measured = false;
  std::string why_not;  // when !measured
  // At data.train_bs x train_width x train_height, by mode (index 0: checkpointing
  // on, 1: off); activations scale with the batch.
  int64_t activations[2] = {0, 0};
  int64_t gradients = 0;  // produced by one backward (parameters that never run get none)
  int probe_small = 64, probe_large = 128;  // probe sizes in pixels
  // A step's tensor peak above weights + AdamW state lies between these: gradients
  // appear during backward while activations are being freed, so the two peaks
  // overlap partly. (The step peak itself is not linear in pixels: at small sizes
  // the gradients decide it, at large ones the activations.)
  int64_t step_peak_low(int mode) const { return std::max(activations[mode], gradients); }
  int64_t step_peak_high(int mode) const { return activations[mode] + gradients; }
};

// Both checkpointing modes at the configured size, by the probe fit above.
ActivationEstimate estimate_activations(const TrainConfig& cfg, const DataShape& shape, model::HalloNet& net);

}  // namespace hallo::trainer
