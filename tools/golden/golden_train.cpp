// train_stage{1,2}_step*: one optimisation step of upstream's training scripts.
// Runs the project's own step (trainer/step.h, the code `hallo train` runs) on the
// recorded batch and random draws, with every upstream quirk on, and produces the
// loss, the gradients before clipping, the clip coefficient and the parameters after
// AdamW, under the golden's names. Sizes come from the files, never from this code.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "model/io/hf_config.h"
#include "model/nn/attention_kernel.h"
#include "model/nn/loader.h"
#include "tools/golden/golden.h"
#include "trainer/step.h"

namespace hallo::golden {

namespace {

const nlohmann::json& harness(const GoldenCase& c) { return c.config.at("_harness"); }

std::string where_of(const GoldenCase& c) { return c.name + ".config.json"; }

// The batch exactly as upstream's step block received it.
trainer::TrainBatch batch_of(const GoldenCase& c, int stage) {
  trainer::TrainBatch b;
  if (stage == 1) {
    b.target_pixels = c.input("in.batch.img").unsqueeze(1);   // [B, 1, 3, H, W]
    b.ref_pixels = c.input("in.batch.ref_img").unsqueeze(1);  // [B, 1, 3, H, W]
    b.face_region = c.input("in.batch.tgt_mask");
  } else {
    b.target_pixels = c.input("in.batch.pixel_values_vid");
    b.ref_pixels = c.input("in.batch.pixel_values_ref_img");
    b.face_region = c.input("in.batch.pixel_values_mask");
    for (int l = 0; l < trainer::kMaskLevels; ++l) {
      const std::string s = "." + std::to_string(l);
      b.full_mask[l] = c.input("in.batch.pixel_values_full_mask" + s);
      b.face_mask[l] = c.input("in.batch.pixel_values_face_mask" + s);
      b.lip_mask[l] = c.input("in.batch.pixel_values_lip_mask" + s);
    }
    b.audio = c.input("in.batch.audio_tensor");
  }
  b.face_emb = c.input("in.batch.face_emb");
  return b;
}

trainer::StepDraws draws_of(const GoldenCase& c) {
  trainer::StepDraws d;
  d.latent_eps = c.input("in.latent_sample_eps");
  d.noise_base = c.input("in.noise_base");
  d.noise_offset = c.input("in.noise_offset_randn");
  d.timesteps = c.input("in.timesteps");
  d.ref_latent_eps = c.input("in.ref_latent_sample_eps");
  const at::Tensor u = c.input("in.random_draws").to(at::kDouble);
  for (int64_t i = 0; i < u.numel(); ++i) d.uniforms.push_back(u[i].item<double>());
  return d;
}

// Gradients before clipping, recorded by name.
struct Recorder : trainer::GradientObserver {
  std::map<std::string, at::Tensor> grads;
  void on_gradients(const trainer::TrainableSet& t) override {
    for (const auto& p : t.params())
      if (p.param.grad().defined()) grads[p.name] = p.param.grad().detach().clone();
  }
};

}  // namespace

Outputs run_train_step(const GoldenCase& c) {
  const std::string where = where_of(c);
  // Reproduce upstream's op order in the frozen reference net too (see AttentionSettings).
  nn::attention_settings().upstream_op_order = true;
  const auto& h = harness(c);
  io::JsonFields hf(h, where + ":_harness");
  const int stage = hf.get<int>("stage");
  const auto& tc = h.at("train_cfg");
  io::JsonFields solver(tc.at("solver"), where + ":_harness.train_cfg.solver");

  // Networks: net.pth-layout weights shared by the goldens of a stage, and the VAE.
  trainer::StepModels m;
  m.net = model::HalloNet(model::HalloNetConfig::from_json(c.config.at("net"), where + ":net"));
  const auto weights = c.dir / hf.get<std::string>("weights");
  nn::load_weights(*m.net, io::StateDict::open(weights), {c.strict, {}});
  m.vae = model::AutoencoderKL(model::VaeConfig::from_json(c.config.at("vae"), where + ":vae"));
  nn::load_weights(*m.vae, io::StateDict::open(c.dir / hf.get<std::string>("vae_weights")),
                   {c.strict, model::vae_translate_legacy_key});
  m.vae->eval();
  m.latent_scale = m.vae->config().scaling_factor;

  // The training config as upstream ran it, every quirk on.
  trainer::TrainConfig cfg = stage == 1 ? trainer::TrainConfig::stage1() : trainer::TrainConfig::stage2();
  cfg.upstream_compat = true;
  cfg.quirks = trainer::QuirkConfig::upstream();
  cfg.noise_scheduler_kwargs = tc.at("noise_scheduler_kwargs");
  cfg.enable_zero_snr = tc.value("enable_zero_snr", true);
  cfg.noise_offset = tc.value("noise_offset", 0.05);
  cfg.snr_gamma = tc.value("snr_gamma", 5.0);
  cfg.uncond_ratio = tc.value("uncond_ratio", cfg.uncond_ratio);
  cfg.uncond_img_ratio = tc.value("uncond_img_ratio", cfg.uncond_img_ratio);
  cfg.uncond_audio_ratio = tc.value("uncond_audio_ratio", cfg.uncond_audio_ratio);
  cfg.start_ratio = tc.value("start_ratio", cfg.start_ratio);
  if (tc.contains("trainable_para")) cfg.trainable_para = tc.at("trainable_para").get<std::vector<std::string>>();
  cfg.solver.gradient_checkpointing = solver.get_or<bool>("gradient_checkpointing", false);
  cfg.solver.max_grad_norm = solver.get<double>("max_grad_norm");
  cfg.solver.learning_rate = solver.get<double>("learning_rate");
  cfg.solver.adam_beta1 = solver.get<double>("adam_beta1");
  cfg.solver.adam_beta2 = solver.get<double>("adam_beta2");
  cfg.solver.adam_weight_decay = solver.get<double>("adam_weight_decay");
  cfg.solver.adam_epsilon = solver.get<double>("adam_epsilon");
  if (c.config.contains("train_noise_scheduler")) {
    const auto want = sched::SchedulerConfig::from_json(c.config.at("train_noise_scheduler"), where + ":train_noise_scheduler");
    if (want.to_json() != cfg.train_scheduler().to_json())
      fail_at(where, "the training scheduler built from noise_scheduler_kwargs differs from train_noise_scheduler");
  }
  m.schedule = sched::NoiseSchedule(cfg.train_scheduler(), where);
  const trainer::StepSettings settings = trainer::step_settings(cfg);
  trainer::apply_quirks(m.net, settings.quirks, hf.get_or<int>("motion_frames", 2));

  // Trainable set: must be upstream's, name for name.
  trainer::TrainableSet trainable = trainer::TrainableSet::select(m.net, stage, cfg.trainable_para);
  const auto want_names = hf.get<std::vector<std::string>>("trainable_params");
  {
    std::set<std::string> ours, theirs(want_names.begin(), want_names.end());
    for (const auto& p : trainable.params()) ours.insert(p.name);
    std::string diff;
    for (const auto& n : theirs)
      if (!ours.count(n)) diff += "\n  upstream trains, we do not: " + n;
    for (const auto& n : ours)
      if (!theirs.count(n)) diff += "\n  we train, upstream does not: " + n;
    if (!diff.empty()) fail_at(where, "trainable set differs from upstream's:{}", diff);
  }
  m.net->train();
  m.net->reference_unet->eval();  // upstream: eval in stage 2, train in stage 1 (no dropout: same numbers)
  m.net->denoising_unet->set_checkpointing(
      nn::CheckpointPolicy{cfg.solver.gradient_checkpointing, settings.quirks.reentrant_checkpoint_grads});

  // The step's decisions must follow from the recorded draws exactly.
  trainer::MicroBatch mb{batch_of(c, stage), draws_of(c), {}};
  mb.decisions = trainer::decide(stage, {cfg.uncond_ratio, cfg.uncond_img_ratio, cfg.uncond_audio_ratio, cfg.start_ratio},
                                 mb.draws.uniforms);
  auto expect = [&](const char* key, bool ours) {
    const std::string k = std::string("in.decision.") + key;
    if (c.has(k) && (c.input(k).item<int64_t>() != 0) != ours)
      fail_at(where, "decision {} from the recorded draws is {}, upstream took {}", key, ours, !ours);
  };
  expect("uncond_fwd", mb.decisions.uncond_fwd);
  expect("uncond_img_fwd", mb.decisions.uncond_img);
  expect("uncond_audio_fwd", mb.decisions.uncond_audio);
  expect("start_frame", mb.decisions.start_frame);

  trainer::AdamW optimizer({cfg.solver.adam_beta1, cfg.solver.adam_beta2, cfg.solver.adam_epsilon,
                            cfg.solver.adam_weight_decay});
  trainer::LocalReducer reducer;
  trainer::Optimization opt{&trainable, &optimizer, &reducer, cfg.solver.max_grad_norm};
  Recorder recorder;
  trainer::StepRecord rec;
  const trainer::StepReport r =
      trainer::optimization_step(m, settings, opt, {mb}, cfg.solver.learning_rate, &recorder, c.want_hooks ? &rec : nullptr);

  Outputs o;
  o["out.loss"] = at::scalar_tensor(r.loss, at::kFloat);
  o["out.grad_norm"] = at::scalar_tensor(r.grad_norm, at::kFloat);
  o["out.clip_coef"] = at::scalar_tensor(r.clip_coef, at::kFloat);
  const int64_t n = static_cast<int64_t>(want_names.size());
  at::Tensor has = at::zeros({n}, at::kLong), norms = at::zeros({n}, at::kFloat);
  std::map<std::string, at::Tensor> params;
  for (const auto& p : trainable.params()) params[p.name] = p.param;
  for (int64_t i = 0; i < n; ++i) {
    auto it = recorder.grads.find(want_names[static_cast<size_t>(i)]);
    if (it == recorder.grads.end()) continue;
    has[i] = 1;
    norms[i] = at::norm(it->second, 2).item<float>();
  }
  o["out.param_has_grad"] = has;
  o["out.param_grad_norm"] = norms;
  for (const auto& [key, t] : c.io) {
    if (key.rfind("out.grad.", 0) == 0) {
      auto it = recorder.grads.find(key.substr(9));
      if (it != recorder.grads.end()) o[key] = it->second;
    } else if (key.rfind("out.updated.", 0) == 0) {
      auto it = params.find(key.substr(12));
      if (it != params.end()) o[key] = it->second.detach().clone();
    }
  }
  // Frozen parameters after the step: [sum, sum of squares, #tensors, #elements] (float64).
  double sum = 0, sq = 0, tensors = 0, elements = 0;
  for (const auto& item : m.net->named_parameters()) {
    if (item.value().requires_grad()) continue;
    const at::Tensor v = item.value().detach().to(at::kDouble);
    sum += v.sum().item<double>();
    sq += (v * v).sum().item<double>();
    tensors += 1;
    elements += static_cast<double>(v.numel());
  }
  o["out.frozen_checksum"] = at::tensor(std::vector<double>{sum, sq, tensors, elements}, at::kDouble);
  for (auto& [k, v] : rec) o["rec." + k] = v;
  return o;
}

std::vector<Comparison> check_train_step(const GoldenCase& c, const Outputs& produced) {
  const auto& h = harness(c);
  const int stage = h.at("stage").get<int>();
  const double lr = h.at("optimizer").at("lr").get<double>();
  std::vector<Comparison> out;
  int64_t updated_close = 0, updated_total = 0;
  for (const auto& [key, want] : c.io) {
    if (key.rfind("out.", 0) != 0) continue;
    Comparison r;
    const at::Tensor got = produced_for(key, want, produced, r);
    if (!got.defined()) {
      out.push_back(r);
      continue;
    }
    const at::Tensor g = got.to(at::kDouble), w = want.to(at::kDouble);
    const at::Tensor diff = (g - w).abs();
    r.max_abs = want.numel() ? diff.max().item<double>() : 0;
    r.max_ref = want.numel() ? w.abs().max().item<double>() : 0;
    r.rel = r.max_ref > 0 ? r.max_abs / r.max_ref : r.max_abs;
    if (r.exact) {
      r.ok = at::equal(got.to(want.scalar_type()), want);
    } else if (key == "out.loss" || key == "out.grad_norm" || key == "out.clip_coef") {
      r.ok = r.rel <= 1e-5;
      r.note = "rel <= 1e-5";
    } else if (key == "out.param_grad_norm") {
      r.ok = r.rel <= 1e-4;
      r.note = "<= 1e-4 of the largest";
    } else if (key == "out.frozen_checksum") {
      r.ok = r.rel <= 1e-9;
      r.note = "rel <= 1e-9";
    } else if (key.rfind("out.grad.", 0) == 0) {
      const double tol = (stage == 1 && key.rfind("out.grad.reference_unet.", 0) == 0) ? 5e-3 : 1e-3;
      r.ok = r.rel <= tol;
      r.note = fmt::format("<= {:g} of max", tol);
    } else if (key.rfind("out.updated.", 0) == 0) {
      // AdamW's first step is ~ -lr * sign(g): an element whose gradient is within float
      // noise of 0 may move by up to 2 lr. Per tensor: <= 2 lr everywhere; the share
      // within lr/100 is checked over all updated elements together (row "out.updated.*").
      const int64_t close = want.numel() ? (diff <= lr / 100).sum().item<int64_t>() : 0;
      updated_close += close;
      updated_total += want.numel();
      r.ok = r.max_abs <= 2 * lr;
      r.note = fmt::format("{}/{} within lr/100", close, want.numel());
      r.rel = r.max_abs / lr;  // reported in units of lr
    } else {
      r.ok = r.rel <= 1e-4;
    }
    if (!std::isfinite(r.max_abs)) r.ok = false;
    out.push_back(r);
  }
  if (updated_total > 0) {
    Comparison r;
    r.key = "out.updated.*";
    const double share = static_cast<double>(updated_close) / static_cast<double>(updated_total);
    r.ok = share >= 0.99;
    r.rel = 1.0 - share;
    r.note = fmt::format("{:.3f}% of {} elements within lr/100, needs >= 99%", share * 100, updated_total);
    out.push_back(r);
  }
  return out;
}

}  // namespace hallo::golden
