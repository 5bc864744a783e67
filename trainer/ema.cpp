#include "trainer/ema.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"

namespace hallo::trainer {

Ema::Ema(EmaConfig cfg, const std::vector<NamedParam>& params) : cfg_(cfg), live_(params) {
  if (cfg_.decay < 0 || cfg_.decay > 1) fail("ema.decay must be in [0, 1], got {}", cfg_.decay);
  if (cfg_.every < 1 || cfg_.start_step < 0) fail("ema.every must be >= 1 and ema.start_step >= 0");
  torch::NoGradGuard ng;
  shadow_.reserve(live_.size());
  for (const auto& p : live_) shadow_.push_back(p.param.detach().to(at::kFloat).clone());
}

void Ema::update(int64_t step) {
  torch::NoGradGuard ng;
  if (step <= cfg_.start_step) {
    for (size_t i = 0; i < live_.size(); ++i) shadow_[i].copy_(live_[i].param.detach());
    return;
  }
  if ((step - cfg_.start_step) % cfg_.every != 0) return;
  // shadow += (1 - d) * (live - shadow): the same update with one rounding less.
  const double w = 1.0 - cfg_.decay;
  for (size_t i = 0; i < live_.size(); ++i) shadow_[i].add_(live_[i].param.detach().to(at::kFloat) - shadow_[i], w);
}

void Ema::swap() {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < live_.size(); ++i) {
    at::Tensor& p = live_[i].param;
    const at::Tensor keep = p.detach().to(at::kFloat).clone();
    p.detach().copy_(shadow_[i]);
    shadow_[i].copy_(keep);
  }
}

void Ema::save(const std::filesystem::path& file) const {
  std::vector<io::TensorRecord> recs;
  recs.reserve(live_.size());
  for (size_t i = 0; i < live_.size(); ++i) recs.push_back(io::from_tensor(live_[i].name, shadow_[i].cpu()));
  io::write_safetensors(file, recs,
                        {{"decay", fmt::format("{}", cfg_.decay)}, {"start_step", std::to_string(cfg_.start_step)},
                         {"every", std::to_string(cfg_.every)}});
}

void Ema::restore(const std::filesystem::path& file) {
  const io::StateDict sd = io::StateDict::open(file);
  if (sd.size() != live_.size())
    fail_at(file.string(), "holds {} EMA tensors, this run trains {} parameters", sd.size(), live_.size());
  torch::NoGradGuard ng;
  for (size_t i = 0; i < live_.size(); ++i) {
    if (!sd.contains(live_[i].name)) fail_at(file.string(), "no EMA weights for '{}'", live_[i].name);
    const at::Tensor t = sd.tensor(live_[i].name);
    if (t.sizes() != shadow_[i].sizes())
      fail_at(file.string(), "EMA '{}' is {}, the parameter is {}", live_[i].name, c10::str(t.sizes()),
              c10::str(shadow_[i].sizes()));
    shadow_[i].copy_(t);
  }
}

}  // namespace hallo::trainer
