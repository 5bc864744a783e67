#pragma once
// AdamW with torch 1.13's update (torch.optim.AdamW, amsgrad off):
//   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// with a per-parameter step count t; parameters without a gradient are skipped
// entirely (no decay, no state), as torch does.
//
// One fused pass per parameter on the CPU (reads p, g, m, v once; torch's op-by-op
// loop makes eight passes, ~8 s per step for Hallo's 0.5 G trained values here);
// the same formula, so it agrees with torch to float rounding (tests: 1e-6). Other
// devices use the op-by-op form. Written here rather than taken from
// torch::optim::AdamW because the trainer needs the state as plain named tensors:
// saved in safetensors next to the weights, and (multi-GPU issue) partitioned.
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

#include "trainer/trainable.h"

namespace hallo::trainer {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
};

class AdamW {
 public:
  explicit AdamW(AdamWOptions o) : o_(o) {}

  // Updates every parameter of `params` that has a gradient, with learning rate `lr`.
  // `owned` (optional, same size): false entries are skipped (another rank owns them).
  void step(const std::vector<NamedParam>& params, double lr, const std::vector<bool>* owned = nullptr);

  struct ParamState {
    int64_t step = 0;
    at::Tensor exp_avg, exp_avg_sq;
  };
  const std::map<std::string, ParamState>& state() const { return state_; }
  std::map<std::string, ParamState>& mutable_state() { return state_; }
  const AdamWOptions& options() const { return o_; }
  int64_t state_bytes() const;

 private:
  AdamWOptions o_;
  std::map<std::string, ParamState> state_;
};

}  // namespace hallo::trainer
