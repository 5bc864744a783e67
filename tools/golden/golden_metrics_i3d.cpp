// I3D golden: one network, two ports on the same (procedural) weights.
//   out.logits                    VideoGPT InceptionI3d (BN eps 1e-5): time-mean logits [B,400]
//   out.logits_pytorch_i3d        piergiaj pytorch-i3d (BN eps 1e-3): logits [B,400,T''], no mean
//   out.logits_pytorch_i3d_tmean  its mean over time [B,400] (the TF original's recipe)
//   hook.<Endpoint>, hook.avg_pool, hook.logits   from the VideoGPT run (--hooks)
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "eval/nets/i3d.h"
#include "model/nn/loader.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

namespace {

eval::nets::InceptionI3d build_i3d(const GoldenCase& c, const io::StateDict& sd, double bn_eps) {
  eval::nets::I3DOptions o;
  o.bn_eps = bn_eps;
  o.num_classes = c.config.value("num_classes", int64_t{400});
  eval::nets::InceptionI3d net(o);
  nn::LoadOptions opts;
  opts.strict = c.strict;
  const auto rep = nn::load_weights(*net, sd, opts);
  if (!rep.ok()) spdlog::warn("non-strict load: {}", rep.summary());
  net->eval();
  return net;
}

}  // namespace

Outputs run_i3d(const GoldenCase& c) {
  const io::StateDict sd = c.metric_weights();
  const at::Tensor& video = c.input("in.video");  // [B,3,T,H,W] in [-1,1]
  torch::NoGradGuard no_grad;
  Outputs o;

  std::map<std::string, at::Tensor> hooks;
  const at::Tensor videogpt = build_i3d(c, sd, 1e-5)->logits_over_time(video, c.want_hooks ? &hooks : nullptr);
  o["out.logits"] = videogpt.mean(2);  // [B,400]
  for (auto& [k, v] : hooks) o["hook." + k] = v;

  const at::Tensor piergiaj = build_i3d(c, sd, 1e-3)->logits_over_time(video);  // [B,400,T'']
  o["out.logits_pytorch_i3d"] = piergiaj;
  o["out.logits_pytorch_i3d_tmean"] = piergiaj.mean(2);
  return o;
}

}  // namespace hallo::golden
