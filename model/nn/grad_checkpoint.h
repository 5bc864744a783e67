#pragma once
// Gradient checkpointing of one network unit (a resnet, a transformer, an audio or
// motion module): its forward runs without keeping activations, and backward runs
// it again (restoring the RNG state first) to get the gradients. A custom autograd
// function, so it needs nothing from libtorch beyond 1.13's C++ autograd API.
//
// Two gradient semantics, because upstream's differ from the plain math:
//  - full: the unit's trainable parameters are inputs of the autograd node, so they
//    get gradients whenever the loss depends on them (what the math says);
//  - reentrant: upstream's torch.utils.checkpoint(use_reentrant=True). Only tensor
//    inputs count: when none of them requires grad, the output has no grad_fn and
//    the unit's parameters get NO gradient. Hallo stage 2 hits this: with the
//    audio dropped, the whole down path of the UNet3D stops training for that step.
//    Reproduced for the goldens and `upstream_compat` (also when activations are
//    kept, so the gradients do not depend on the memory setting).
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace torch::nn {
class Module;
}

namespace hallo::nn {

struct CheckpointPolicy {
  bool recompute = false;  // drop activations in forward, recompute them in backward
  bool reentrant = false;  // upstream's reentrant gradient semantics (see above)
  // Blocks ("up_blocks.1") whose units keep their activations although `recompute` is
  // on: a speed/memory trade. Up blocks run backward first, so what they keep is
  // freed before most gradients exist and costs little peak memory.
  std::vector<std::string> keep{};
  bool active() const { return recompute || reentrant; }
  // This policy for the units of block `path`.
  CheckpointPolicy for_block(const std::string& path) const;
};

using UnitFn = std::function<at::Tensor(const std::vector<at::Tensor>& inputs)>;

// Runs fn(inputs) under `policy`. `inputs` are every tensor fn reads that may carry
// gradient (undefined ones are allowed and passed through); `module` owns the
// parameters fn uses. With an inactive policy this is just fn(inputs).
at::Tensor run_unit(const CheckpointPolicy& policy, const torch::nn::Module& module, const UnitFn& fn,
                    const std::vector<at::Tensor>& inputs);

}  // namespace hallo::nn
