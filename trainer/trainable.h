#pragma once
// The one place that owns "the trainable parameters" of a training run. It decides
// them exactly as upstream does, freezes everything else (requires_grad false, so
// autograd does no work for them), and gives every consumer (optimizer, gradient
// reduction, clipping, checkpoints, the goldens) the same list in the same order:
// HalloNet's named_parameters() order, names in net.pth layout.
//  - stage 1: reference_unet, denoising_unet (its 2D modules: anything under
//    audio_modules / motion_modules stays frozen), imageproj, face_locator;
//  - stage 2: audioproj, plus every parameter of a denoising_unet module whose name
//    contains one of `trainable_para` (upstream: audio_modules, motion_modules).
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "model/hallo/hallo_net.h"

namespace hallo::trainer {

struct NamedParam {
  std::string name;  // net.pth key, e.g. "denoising_unet.up_blocks.1.audio_modules.0.norm.weight"
  at::Tensor param;
};

class TrainableSet {
 public:
  // Selects, freezes the rest, and returns the set. `patterns` (identity fine-tuning,
  // `trainable_patterns`): when not empty, they replace the stage's rule: a parameter
  // trains when its net.pth name matches one of the regexes (ECMAScript, searched
  // anywhere in the name); a pattern that matches nothing is an error naming it.
  static TrainableSet select(model::HalloNet& net, int stage, const std::vector<std::string>& trainable_para,
                             const std::vector<std::string>& patterns = {});

  const std::vector<NamedParam>& params() const { return params_; }
  size_t size() const { return params_.size(); }
  int64_t numel() const;
  // Counts per top-level part ("reference_unet", "denoising_unet.motion_modules", ...), for --dry-run.
  std::vector<std::pair<std::string, int64_t>> numel_by_part() const;
  // Frozen parameters and buffers (names and tensors), for checks that they never change.
  const std::vector<NamedParam>& frozen() const { return frozen_; }

  void zero_grad();  // sets every gradient to undefined (frees its memory)

 private:
  std::vector<NamedParam> params_, frozen_;
};

// Which part of the net a parameter belongs to, for reports: the top-level module,
// and for the denoising UNet its audio / motion modules separately.
std::string param_part(const std::string& name);

}  // namespace hallo::trainer
