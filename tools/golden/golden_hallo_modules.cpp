// Hallo's small modules: face_locator(in.conditioning) -> out.embedding (hook.* =
// each conv before its SiLU); imageproj(in.face_emb) -> out.cond_tokens and
// imageproj(zeros) -> out.uncond_tokens (the pipeline's CFG half);
// audioproj(in.audio_emb_windows) -> out.context_tokens.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "model/hallo/audio_proj.h"
#include "model/hallo/face_locator.h"
#include "model/hallo/image_proj.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_face_locator(const GoldenCase& c) {
  model::FaceLocator m(model::FaceLocatorConfig::from_json(c.config, c.name + ".config.json"));
  c.load_into(*m);
  m->eval();
  torch::NoGradGuard ng;
  std::map<std::string, at::Tensor> hooks;
  Outputs o{{"out.embedding", m->forward(c.input("in.conditioning"), c.want_hooks ? &hooks : nullptr)}};
  for (auto& [k, v] : hooks) o["hook." + k] = v;
  return o;
}

Outputs run_image_proj(const GoldenCase& c) {
  model::ImageProjModel m(model::ImageProjConfig::from_json(c.config, c.name + ".config.json"));
  c.load_into(*m);
  m->eval();
  torch::NoGradGuard ng;
  const auto& emb = c.input("in.face_emb");
  return {{"out.cond_tokens", m->forward(emb)}, {"out.uncond_tokens", m->forward(at::zeros_like(emb))}};
}

Outputs run_audio_proj(const GoldenCase& c) {
  model::AudioProjModel m(model::AudioProjConfig::from_json(c.config, c.name + ".config.json"));
  c.load_into(*m);
  m->eval();
  torch::NoGradGuard ng;
  return {{"out.context_tokens", m->forward(c.input("in.audio_emb_windows"))}};
}

}  // namespace hallo::golden
