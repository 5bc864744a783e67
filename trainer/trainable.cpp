#include "trainer/trainable.h"

#include <ATen/ATen.h>

#include <map>

#include "core/error.h"
#include "core/name_patterns.h"

namespace hallo::trainer {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Upstream: `any(m in name for m in trainable_modules)` over denoising_unet.named_modules(),
// then every parameter of a matching module. A parameter is selected when one of its
// enclosing module paths contains a pattern, i.e. its module path (the name without
// the last component) contains it as a substring of some prefix.
bool under_matching_module(const std::string& name, const std::vector<std::string>& patterns) {
  const auto last_dot = name.rfind('.');
  const std::string module_path = last_dot == std::string::npos ? std::string() : name.substr(0, last_dot);
  for (const auto& p : patterns)
    if (!p.empty() && module_path.find(p) != std::string::npos) return true;
  return false;
}

}  // namespace

std::string param_part(const std::string& name) {
  const auto dot = name.find('.');
  std::string top = name.substr(0, dot);
  if (name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos) return top + " LoRA";
  if (top == "denoising_unet") {
    if (name.find(".motion_modules.") != std::string::npos) return "denoising_unet.motion_modules";
    if (name.find(".audio_modules.") != std::string::npos) return "denoising_unet.audio_modules";
    return "denoising_unet (2D)";
  }
  return top;
}

TrainableSet TrainableSet::select(model::HalloNet& net, int stage, const std::vector<std::string>& trainable_para,
                                  const std::vector<std::string>& patterns) {
  if (stage != 1 && stage != 2) fail("trainable set: stage must be 1 or 2, got {}", stage);
  if (stage == 2 && !net->audioproj) fail("stage 2 needs a net with an audio projection (audioproj)");
  NamePatterns chosen(patterns, "trainable_patterns");
  TrainableSet s;
  for (const auto& item : net->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    bool train = false;
    if (!chosen.empty()) {
      train = chosen.match(name);
    } else if (stage == 1) {
      const bool temporal = name.find(".audio_modules.") != std::string::npos ||
                            name.find(".motion_modules.") != std::string::npos;
      train = starts_with(name, "reference_unet.") || starts_with(name, "imageproj.") ||
              starts_with(name, "face_locator.") || (starts_with(name, "denoising_unet.") && !temporal);
    } else {
      train = starts_with(name, "audioproj.") ||
              (starts_with(name, "denoising_unet.") &&
               under_matching_module(name.substr(std::string("denoising_unet.").size()), trainable_para));
    }
    at::Tensor p = item.value();
    p.set_requires_grad(train);
    (train ? s.params_ : s.frozen_).push_back({name, p});
  }
  for (const auto& item : net->named_buffers(/*recurse=*/true)) s.frozen_.push_back({item.key(), item.value()});
  chosen.require_all_used("parameter of the net");
  if (s.params_.empty()) fail("stage {}: no parameter matches the trainable set (trainable_para)", stage);
  return s;
}

int64_t TrainableSet::numel() const {
  int64_t n = 0;
  for (const auto& p : params_) n += p.param.numel();
  return n;
}

std::vector<std::pair<std::string, int64_t>> TrainableSet::numel_by_part() const {
  std::vector<std::pair<std::string, int64_t>> out;
  std::map<std::string, size_t> index;
  for (const auto& p : params_) {
    const std::string part = param_part(p.name);
    auto it = index.find(part);
    if (it == index.end()) {
      index[part] = out.size();
      out.emplace_back(part, 0);
      it = index.find(part);
    }
    out[it->second].second += p.param.numel();
  }
  return out;
}

void TrainableSet::zero_grad() {
  for (auto& p : params_) p.param.mutable_grad() = at::Tensor();
}

}  // namespace hallo::trainer
