#include "trainer/trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <map>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/io/hf_config.h"
#include "model/nn/loader.h"
#include "model/nn/autocast.h"
#include "model/nn/lora.h"
#include "trainer/activation_estimate.h"
#include "trainer/checkpoint.h"
#include "trainer/early_stop.h"
#include "trainer/ema.h"
#include "trainer/lr_schedule.h"
#include "trainer/model_folder.h"
#include "trainer/model_setup.h"
#include "trainer/run_log.h"
#include "trainer/run_loop.h"
#include "trainer/stop_signal.h"
#include "trainer/zero.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

double gib(int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

int64_t param_bytes(const std::vector<NamedParam>& v) {
  int64_t n = 0;
  for (const auto& p : v) n += p.param.numel() * static_cast<int64_t>(p.param.element_size());
  return n;
}

// Differences between two resolved configs, "key: old -> new" (top two levels).
std::vector<std::string> config_changes(const nlohmann::json& a, const nlohmann::json& b) {
  std::vector<std::string> out;
  if (!a.is_object() || !b.is_object()) return out;
  for (const auto& [k, v] : b.items()) {
    if (!a.contains(k)) continue;
    const auto& old = a.at(k);
    if (old == v) continue;
    if (old.is_object() && v.is_object()) {
      for (const auto& [k2, v2] : v.items())
        if (old.contains(k2) && old.at(k2) != v2) out.push_back(k + "." + k2 + ": " + old.at(k2).dump() + " -> " + v2.dump());
    } else {
      out.push_back(k + ": " + old.dump() + " -> " + v.dump());
    }
  }
  return out;
}

}  // namespace

fs::path run_dir_of(const TrainConfig& c, const TrainOptions& o) {
  if (!o.run_dir.empty()) return o.run_dir;
  return fs::path(c.output_dir) / c.exp_name;
}

struct Trainer::Impl {
  TrainConfig cfg;
  TrainOptions opt;
  std::unique_ptr<BatchSource> data;
  std::unique_ptr<Validator> validator;
  fs::path run_dir;

  StepModels m;
  StepSettings settings;
  std::unique_ptr<TrainableSet> trainable;
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<Ema> ema;  // cfg.ema.enabled
  EarlyStop early;                 // val.early_stop_patience
  int64_t final_step = -1;         // the step final/ holds when not the last one (early stop)
  std::vector<at::Tensor> best;    // trainable weights of early.best_step (patience > 0)
  void note_heldout(int64_t step, double loss) {
    if (cfg.val.early_stop_patience <= 0) return;
    if (early.record(step, loss)) {
      best.clear();
      for (const auto& p : trainable->params()) best.push_back(p.param.detach().clone());
    }
  }
  std::unique_ptr<StepRng> rng;
  LossScaler scaler;  // fp16 (or solver.loss_scale: dynamic); disabled otherwise
  std::unique_ptr<GradientReducer> reducer;
  double exposed_before = 0;
  std::vector<int> owners;  // ZeRO-1: each trainable parameter's rank (empty: unsharded)
  std::vector<bool> owned;
  bool root() const { return opt.rank == 0; }
  LrSchedule lr;
  ModelFolderParts parts;
  TrainerState state;
  bool resumed = false;
  fs::path last_checkpoint;
  std::optional<MicroBatch> heldout;  // fixed batch, noise and timesteps; all conditions on

  void print_plan(const DataShape& shape);
  void setup(const std::optional<fs::path>& resume_from);
  void write_run_files(const ModelBundle* bundle);
  std::vector<MicroBatch> next_micro_batches();
  DrawShape draw_shape(const TrainBatch& b) const;
  double heldout_loss();
  void gather_step_statistics(StepReport& r);
  void log_step(RunLog& log, const StepReport& r, double seconds, int64_t samples, std::optional<double> heldout);
  fs::path save_checkpoint(CheckpointStore& store);
  void write_final(const fs::path& dir);
};

Trainer::Trainer(TrainConfig config, TrainOptions options, std::unique_ptr<BatchSource> data,
                 std::unique_ptr<Validator> validator)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  impl_->opt = std::move(options);
  impl_->data = std::move(data);
  impl_->validator = std::move(validator);
  if (!impl_->data) fail("trainer: no data source");
}

Trainer::~Trainer() = default;

void Trainer::Impl::print_plan(const DataShape& shape) {
  ModelBundle b = build_models(cfg, shape, /*need_vae=*/false, /*load=*/false);
  TrainableSet t = TrainableSet::select(b.net, cfg.stage, cfg.trainable_para, cfg.trainable_selection());
  std::vector<NamedParam> all = t.params();
  all.insert(all.end(), t.frozen().begin(), t.frozen().end());
  int64_t w = param_bytes(all);
  const int64_t g = param_bytes(t.params());
  int64_t vae = 0;
  if (b.vae)
    for (const auto& p : b.vae->parameters()) vae += p.numel() * static_cast<int64_t>(p.element_size());
  // solver.frozen_dtype: the frozen parameters (not buffers) and the VAE at 2 bytes a value.
  const bool half_frozen = cfg.solver.frozen_dtype != "fp32";
  if (half_frozen) {
    const FrozenSavings sv =
        frozen_weight_savings(b.net, b.vae, nn::mixed_precision_dtype(cfg.solver.frozen_dtype.c_str()));
    w -= sv.net;
    vae -= sv.vae;
  }
  fmt::print("resolved config:\n{}\n\n", cfg.to_json().dump(2));
  fmt::print("data: {}\n\n", data->describe());
  fmt::print("trainable parameters (stage {}): {} tensors, {:.1f} M values\n", cfg.stage, t.size(),
             static_cast<double>(t.numel()) / 1e6);
  for (const auto& [part, n] : t.numel_by_part()) fmt::print("  {:<34} {:>10.2f} M\n", part, static_cast<double>(n) / 1e6);
  int64_t frozen = 0;
  for (const auto& p : t.frozen()) frozen += p.param.numel();
  fmt::print("frozen parameters and buffers: {:.1f} M values\n\n", static_cast<double>(frozen) / 1e6);
  fmt::print("estimated memory ({}, standard AdamW):\n",
             cfg.solver.mixed_precision == "no"
                 ? std::string("float32")
                 : fmt::format("{} autocast, float32 master weights{}", cfg.solver.mixed_precision,
                               half_frozen ? fmt::format(", frozen weights in {}", cfg.solver.frozen_dtype) : ""));
  fmt::print("  net weights           {:8.2f} GiB ({:.1f} MiB)\n", gib(w), static_cast<double>(w) / (1 << 20));
  fmt::print("  VAE weights           {:8.2f} GiB{}\n", gib(vae), b.vae ? "" : " (config gives no VAE shape)");
  fmt::print("  gradients             {:8.2f} GiB (at most; parameters that get none cost nothing)\n", gib(g));
  fmt::print("  AdamW state (m, v)    {:8.2f} GiB (at most)\n", gib(2 * g));
  fmt::print("  total before activations {:5.2f} GiB\n", gib(w + vae + 3 * g));
  // Measured on the real networks at two probe sizes, fitted to the configured one.
  const ActivationEstimate act = estimate_activations(cfg, shape, b.net);
  const int mode = cfg.solver.gradient_checkpointing ? 0 : 1;
  if (act.measured) {
    fmt::print("one step, measured on these networks at {} and {} px (batch 1, {} frames) and fitted to "
               "data.train_bs {} at {}x{}:\n",
               act.probe_small, act.probe_large, cfg.stage == 2 ? cfg.data.n_sample_frames : 1, cfg.data.train_bs,
               cfg.data.train_width, cfg.data.train_height);
    fmt::print("                                   checkpointing on   off\n");
    fmt::print("  activations                      {:8.2f} GiB {:8.2f} GiB\n", gib(act.activations[0]),
               gib(act.activations[1]));
    fmt::print("  gradients produced {:.2f} GiB (parameters that never run get none, nor AdamW state)\n",
               gib(act.gradients));
    const int64_t base = w + vae + 2 * act.gradients;
    for (int k = 0; k < 2; ++k)
      fmt::print("expected tensor peak {}: {:.2f} to {:.2f} GiB{}\n", k == 0 ? "with checkpointing   " : "without checkpointing",
                 gib(base + act.step_peak_low(k)), gib(base + act.step_peak_high(k)), k == mode ? " (configured)" : "");
    fmt::print("(weights + AdamW state + the step's gradients and activations, which overlap partly; the process's "
               "resident size adds its libraries and thread buffers)\n");
    if (cfg.solver.mixed_precision != "no")
      fmt::print("(activations measured in float32 on the CPU: under {} autocast most are half as large, so these "
                 "figures are an upper bound)\n",
                 cfg.solver.mixed_precision);
  } else {
    fmt::print("activations: not measured ({})\n", act.why_not);
  }
  if (opt.plan_world_size > 1) {
    const int n = opt.plan_world_size;
    const int zs = cfg.solver.zero_stage;
    // Gradients produced (measured) when known, else every trainable value.
    const int64_t gp = act.measured ? act.gradients : g;
    auto share = [n](int64_t x) { return (x + n - 1) / n; };
    fmt::print("\nper rank, {} ranks (data parallel{}):\n", n, zs > 0 ? fmt::format(", ZeRO-{}", zs) : "");
    fmt::print("  net + VAE weights     {:8.2f} GiB (every rank)\n", gib(w + vae));
    const int64_t grads = zs == 2 ? share(gp) : gp;
    fmt::print("  gradients             {:8.2f} GiB{}\n", gib(grads),
               zs == 2 ? fmt::format(" (1/{} of {:.2f} GiB, plus the buckets in flight: solver.zero_stage 2)", n, gib(gp))
                       : " (every rank, in the reduction buckets; solver.zero_stage 2 divides it by the ranks)");
    const int64_t adam = zs >= 1 ? share(2 * gp) : 2 * gp;
    fmt::print("  AdamW state (m, v)    {:8.2f} GiB{}\n", gib(adam),
               zs >= 1 ? fmt::format(" (1/{} of {:.2f} GiB: solver.zero_stage {})", n, gib(2 * gp), zs)
                       : " (solver.zero_stage 1 divides it by the ranks)");
    const int64_t per_rank = w + vae + grads + adam;
    if (act.measured)
      fmt::print("  activations           {:8.2f} GiB (data.train_bs per rank, as above)\n  expected peak         {:8.2f} GiB "
                 "per rank (at most)\n",
                 gib(act.activations[mode]), gib(per_rank + act.activations[mode]));
    else
      fmt::print("  total before activations {:5.2f} GiB per rank\n", gib(per_rank));
  }
}

void Trainer::Impl::setup(const std::optional<fs::path>& resume_from) {
  const DataShape shape = data->shape();
  settings = step_settings(cfg);
  // Before the networks are built or anything is written: refuse what this device cannot run.
  if (settings.autocast == at::kHalf && opt.device.is_cpu())
    fail("solver.mixed_precision fp16 needs a CUDA device (--device cuda); on the CPU use 'no'");
  if (cfg.solver.frozen_dtype != "fp32" && opt.device.is_cpu())
    fail("solver.frozen_dtype {} needs a CUDA device (--device cuda)", cfg.solver.frozen_dtype);
#if TORCH_VERSION_MAJOR < 2
  if (settings.autocast != at::kFloat && opt.device.is_cpu())
    fail("solver.mixed_precision {} needs a CUDA device (--device cuda): libtorch {}'s CPU autocast fails in "
         "layer_norm; on the CPU use 'no'", cfg.solver.mixed_precision, TORCH_VERSION);
#endif
  const bool latents_stored = shape.latent_channels > 0;
  const bool zero_frames = cfg.stage == 2 && cfg.start_ratio > 0 && cfg.data.n_motion_frames > 0;
  const bool need_vae = !latents_stored || zero_frames || validator != nullptr;

  std::optional<ModelBundle> bundle;
  if (resume_from) {
    // Everything from the checkpoint's model folder: the sources may have moved.
    const LoadedCheckpoint ck = read_checkpoint(*resume_from);
    for (const auto& change : config_changes(ck.state.config, cfg.to_json()))
      spdlog::warn("resume: config differs from the checkpoint's ({}); the run is no longer bit-identical", change);
    m.net = model::HalloNet(model::HalloNetConfig::from_json(ck.model.net_config, (ck.model.dir / "net_config.json").string()));
    m.net->load(net_state_dict(ck.model), /*strict=*/true);
    parts.net_config = ck.model.net_config;
    if (!ck.model.vae_dir.empty()) {
      parts.vae_config = io::load_json_file(ck.model.vae_dir / "config.json");
      parts.vae_weights = ck.model.vae_dir / "diffusion_pytorch_model.safetensors";
      if (need_vae) {
        m.vae = model::AutoencoderKL(model::VaeConfig::from_json(parts.vae_config, (ck.model.vae_dir / "config.json").string()));
        nn::load_weights(*m.vae, io::StateDict::open(parts.vae_weights), {true, model::vae_translate_legacy_key});
        m.vae->eval();
        for (auto& p : m.vae->parameters()) p.set_requires_grad(false);
      }
    } else if (need_vae) {
      fail_at(resume_from->string(), "the checkpoint has no VAE, which this run needs");
    }
    state = ck.state;
    resumed = true;
  } else {
    bundle = build_models(cfg, shape, need_vae);
    for (const auto& line : bundle->report) spdlog::info("init: {}", line);
    m.net = bundle->net;
    m.vae = bundle->vae;
    parts.net_config = bundle->net_config;
    parts.vae_config = bundle->vae_config;
    state.step = 0;
  }
  state.config = cfg.to_json();

  if (!opt.device.is_cpu()) {
    m.net->to(opt.device);
    if (m.vae) m.vae->to(opt.device);
    spdlog::info("device: {}{}", opt.device.str(),
                 settings.autocast != at::kFloat ? fmt::format(", {} autocast, float32 master weights",
                                                               cfg.solver.mixed_precision)
                                                 : std::string());
  }
  apply_quirks(m.net, settings.quirks, cfg.data.n_motion_frames);
  trainable = std::make_unique<TrainableSet>(TrainableSet::select(m.net, cfg.stage, cfg.trainable_para, cfg.trainable_selection()));
  reducer = opt.make_reducer ? opt.make_reducer(trainable->params(), cfg.solver.zero_stage == 2)
                             : std::make_unique<LocalReducer>();
  if (reducer->world_size() != opt.world_size || reducer->rank() != opt.rank)
    fail("trainer: the reducer is rank {} of {}, the options say {} of {}", reducer->rank(), reducer->world_size(),
         opt.rank, opt.world_size);
  if (!resume_from && reducer->world_size() > 1) {
    // Every rank starts from rank 0's weights (they agree anyway when seeded or loaded).
    std::vector<at::Tensor> ts;
    for (const auto& p : trainable->params()) ts.push_back(p.param.detach());
    reducer->broadcast_from_root(ts);
  }
  m.net->train();
  if (cfg.stage == 2) m.net->reference_unet->eval();  // upstream: from_pretrained, never trained in stage 2
  m.net->denoising_unet->set_checkpointing(
      nn::CheckpointPolicy{cfg.solver.gradient_checkpointing, settings.quirks.reentrant_checkpoint_grads,
                           cfg.solver.checkpoint_keep_blocks});

  if (cfg.solver.zero_stage >= 1 && reducer->world_size() > 1) {
    // The same owners as the ZeRO-2 reducer's gradient segments (both from zero_owners).
    owners = zero_owners(trainable->params(), reducer->world_size());
    for (int o : owners) owned.push_back(o == reducer->rank());
  }
  optimizer = std::make_unique<AdamW>(AdamWOptions{cfg.solver.adam_beta1, cfg.solver.adam_beta2,
                                                   cfg.solver.adam_epsilon, cfg.solver.adam_weight_decay});
  lr.kind = cfg.solver.lr_scheduler;
  lr.base_lr = cfg.effective_learning_rate(reducer->world_size());
  lr.warmup_steps = cfg.solver.lr_warmup_steps;
  lr.total_steps = cfg.solver.max_train_steps;
  lr.num_cycles = cfg.solver.lr_num_cycles;
  if (cfg.upstream_compat) {
    // accelerate counts warmup/total in micro-steps and steps the scheduler once per process.
    lr.warmup_steps *= cfg.solver.gradient_accumulation_steps;
    lr.total_steps *= cfg.solver.gradient_accumulation_steps;
    lr.steps_per_update = reducer->world_size();
  }
  rng = std::make_unique<StepRng>(cfg.seed, reducer->rank());
  scaler = LossScaler(cfg.loss_scale_config());
  if (resume_from) {
    scaler.restore(state.loss_scale, (*resume_from / "trainer_state.json").string());
    // The buckets the saved run reduced in (another world size: still valid, per parameter).
    if (reducer->world_size() > 1 && state.bucket_order.size() == trainable->params().size())
      reducer->set_bucket_order(state.bucket_order);
    restore_optimizer(*resume_from, trainable->params(), *optimizer, owned.empty() ? nullptr : &owned);
    const int saved_world = state.world_size;
    if (saved_world == reducer->world_size()) {
      restore_rng(*resume_from, *rng, reducer->rank());
      data->seek(reducer->rank() == 0 ? state.data : state.data_by_rank.at(static_cast<size_t>(reducer->rank())));
    } else {
      // Another world size: each rank's stream restarts from (seed, rank, step) and the
      // sampler position is re-mapped so the same number of samples counts as consumed.
      spdlog::warn("resume: the checkpoint was written by {} rank(s), this run has {}: sampler positions are "
                   "re-mapped and the random streams re-derived; training continues, not bit-identical",
                   saved_world, reducer->world_size());
      rng = std::make_unique<StepRng>(cfg.seed ^ static_cast<uint64_t>(state.step) * 0x9e3779b97f4a7c15ull, reducer->rank());
      data->seek(data->remap_position(state.data, saved_world, reducer->world_size()));
    }
    spdlog::info("resumed from {} at step {}", resume_from->string(), state.step);
  }
  if (cfg.ema.enabled) {
    ema = std::make_unique<Ema>(cfg.ema, trainable->params());
    if (resume_from) {
      if (fs::exists(*resume_from / "ema.safetensors")) ema->restore(*resume_from / "ema.safetensors");
      else spdlog::warn("resume: {} has no EMA weights; the average starts from the resumed weights", resume_from->string());
    }
  }

  m.schedule = sched::NoiseSchedule(cfg.train_scheduler(), "noise_scheduler_kwargs");
  if (!parts.vae_config.is_null()) m.latent_scale = parts.vae_config.value("scaling_factor", 0.18215);
  if (zero_frames && latents_stored) {
    // start_frame zeroes motion-frame pixels, whose posterior the shards cannot hold.
    at::NoGradGuard no_grad;
    const auto post = m.vae->encode(at::zeros({1, 3, shape.height, shape.width}, at::TensorOptions().device(opt.device)));
    m.zero_frame_mean = post.mean[0];
    m.zero_frame_std = post.std()[0];
  }
  if (latents_stored && !validator) m.vae = nullptr;  // nothing left to encode or decode

  if (auto hb = data->heldout_batch(cfg.data.train_bs); hb && cfg.val.loss_steps > 0) {
    MicroBatch mb;
    mb.batch = hb->to(opt.device);
    StepRng fixed(cfg.seed ^ 0x68656c64ull, 0);
    mb.draws = fixed.draw(draw_shape(mb.batch)).to(opt.device);
    heldout = std::move(mb);  // decisions: every condition kept
  }

  write_run_files(bundle ? &*bundle : nullptr);
  // Encoding on the fly without validation (or on ranks other than 0): the decoder is
  // dead weight (0.19 GiB of SD's VAE). After write_run_files, which may save the VAE.
  if (m.vae && !validator) m.vae->release_decoder();
  // Low-precision frozen weights, after write_run_files (model folders keep float32).
  if (cfg.solver.frozen_dtype != "fp32") {
    const FrozenSavings sv =
        store_frozen_weights(m.net, m.vae, nn::mixed_precision_dtype(cfg.solver.frozen_dtype.c_str()));
    spdlog::info("frozen weights stored in {}: {:.2f} GiB saved", cfg.solver.frozen_dtype, gib(sv.total()));
  }
}

void Trainer::Impl::write_run_files(const ModelBundle* bundle) {
  if (!root()) return;  // rank 0 writes the run folder
  fs::create_directories(run_dir / "frozen");
  write_file_atomic(run_dir / "config.json", cfg.to_json().dump(2) + "\n");
  // Frozen weights never change: written once, hard-linked into every checkpoint.
  if (!trainable->frozen().empty()) {
    parts.frozen_weights = run_dir / "frozen" / "net.frozen.safetensors";
    if (!fs::exists(parts.frozen_weights)) write_frozen_weights(parts.frozen_weights, trainable->frozen());
  }
  if (bundle && !parts.vae_config.is_null()) {
    if (bundle->vae_weights.extension() == ".safetensors") {
      parts.vae_weights = bundle->vae_weights;
    } else {  // a random VAE or a pickled one: one safetensors copy for the model folders
      parts.vae_weights = run_dir / "frozen" / "vae.safetensors";
      std::vector<NamedParam> v;
      for (const auto& item : bundle->vae->named_parameters()) v.push_back({item.key(), item.value()});
      for (const auto& item : bundle->vae->named_buffers()) v.push_back({item.key(), item.value()});
      write_frozen_weights(parts.vae_weights, v);
    }
  }
  const DataShape shape = data->shape();
  parts.audio = opt.audio_info.is_null() ? nlohmann::json::object() : opt.audio_info;
  // The feature settings stay loadable as an AudioPipelineConfig; what the shards
  // say about the features rides along under names the parser skips (feature_*).
  parts.audio["feature_extractor_id"] = shape.audio_extractor;
  parts.audio["feature_layers"] = shape.audio_layers;
  parts.audio["feature_dim"] = shape.audio_dim;
  parts.audio["window_radius"] = cfg.data.audio_margin;
  parts.wav2vec2 = opt.wav2vec2;
  parts.data = {{"height", shape.height},
                {"width", shape.width},
                {"n_sample_frames", cfg.data.n_sample_frames},
                {"n_motion_frames", cfg.data.n_motion_frames},
                {"fps", cfg.data.fps},
                {"sample_rate", cfg.data.sample_rate}};
  // How the training faces were cropped and masked, so inference frames them alike.
  if (opt.prepare_info.is_object())
    for (const char* k : {"crop_scale", "masks", "face", "arcface_onnx"})
      if (opt.prepare_info.contains(k)) parts.data["prepare"][k] = opt.prepare_info.at(k);
}

DrawShape Trainer::Impl::draw_shape(const TrainBatch& b) const {
  DrawShape ds;
  ds.stage = cfg.stage;
  ds.batch = b.batch();
  ds.frames = b.frames();
  ds.ref_frames = b.ref_frames();
  ds.num_train_timesteps = m.schedule.num_train_timesteps();
  if (b.target_mean.defined()) {
    ds.channels = b.target_mean.size(2);
    ds.height = b.target_mean.size(3);
    ds.width = b.target_mean.size(4);
  } else {
    const auto vc = m.vae->config();
    const int64_t down = int64_t{1} << (vc.block_out_channels.size() - 1);
    ds.channels = vc.latent_channels;
    ds.height = b.target_pixels.size(3) / down;
    ds.width = b.target_pixels.size(4) / down;
  }
  return ds;
}

std::vector<MicroBatch> Trainer::Impl::next_micro_batches() {
  std::vector<MicroBatch> micro;
  const DropoutRatios ratios{cfg.uncond_ratio, cfg.uncond_img_ratio, cfg.uncond_audio_ratio, cfg.start_ratio};
  for (int g = 0; g < cfg.solver.gradient_accumulation_steps; ++g) {
    MicroBatch mb;
    mb.batch = data->next(cfg.data.train_bs).to(opt.device);
    mb.draws = rng->draw(draw_shape(mb.batch)).to(opt.device);
    mb.decisions = decide(cfg.stage, ratios, mb.draws.uniforms);
    micro.push_back(std::move(mb));
  }
  return micro;
}

double Trainer::Impl::heldout_loss() {
  at::NoGradGuard no_grad;
  const auto r = forward_loss(m, settings, heldout->batch, heldout->draws, heldout->decisions);
  return r.terms.loss.item<double>();
}

void Trainer::Impl::log_step(RunLog& log, const StepReport& r, double seconds, int64_t samples,
                             std::optional<double> held) {
  std::vector<std::pair<std::string, double>> s = {{"loss", r.loss},
                                                   {"lr", r.lr},
                                                   {"grad_norm", r.grad_norm},
                                                   {"clip_coef", r.clip_coef},
                                                   {"step_time_s", seconds},
                                                   {"forward_s", r.forward_s},
                                                   {"backward_s", r.backward_s},
                                                   {"update_s", r.update_s},
                                                   {"samples_per_s", seconds > 0 ? samples / seconds : 0},
                                                   {"peak_rss_gib", peak_rss_gib()},
                                                   {"skipped", r.applied ? 0.0 : 1.0}};
  if (scaler.enabled()) s.emplace_back("loss_scale", r.loss_scale);
  if (held) s.emplace_back("heldout_loss", *held);
  if (reducer->world_size() > 1) {
    // How much of the gradient all-reduce backward did not hide, this step.
    const double exposed = reducer->exposed_seconds();
    s.emplace_back("allreduce_wait_s", exposed - exposed_before);
    s.emplace_back("buckets_started_in_backward", reducer->launched_during_backward());
    exposed_before = exposed;
  }
  // Loss per timestep bucket (tenths of the schedule): which noise levels are learnt.
  std::map<int, std::pair<double, int>> buckets;
  const int per = std::max(1, m.schedule.num_train_timesteps() / 10);
  for (size_t i = 0; i < r.sample_losses.size(); ++i) {
    auto& b = buckets[static_cast<int>(r.sample_timesteps[i]) / per];
    b.first += r.sample_losses[i];
    b.second += 1;
  }
  for (const auto& [k, v] : buckets)
    s.emplace_back(fmt::format("loss_t{:03d}_{:03d}", k * per, (k + 1) * per - 1), v.first / v.second);
  nlohmann::json extra = nlohmann::json::object();
  nlohmann::json dec = nlohmann::json::array();
  for (const auto& d : r.decisions) {
    if (cfg.stage == 1) dec.push_back({{"uncond", d.uncond_fwd}});
    else dec.push_back({{"uncond_img", d.uncond_img}, {"uncond_audio", d.uncond_audio}, {"start_frame", d.start_frame}});
  }
  extra["decisions"] = dec;
  extra["timesteps"] = r.sample_timesteps;
  log.write(state.step, s, extra);
}

void Trainer::Impl::gather_step_statistics(StepReport& r) {
  nlohmann::json mine = nlohmann::json::array();
  for (size_t i = 0; i < r.decisions.size(); ++i) {
    const auto& d = r.decisions[i];
    mine.push_back({d.uncond_fwd, d.uncond_img, d.uncond_audio, d.start_frame});
  }
  const auto all = reducer->gather(nlohmann::json{{"d", mine}, {"l", r.sample_losses}, {"t", r.sample_timesteps}}.dump());
  r.decisions.clear();
  r.sample_losses.clear();
  r.sample_timesteps.clear();
  for (const auto& a : all) {
    const auto j = nlohmann::json::parse(a);
    for (const auto& d : j.at("d"))
      r.decisions.push_back({d[0].get<bool>(), d[1].get<bool>(), d[2].get<bool>(), d[3].get<bool>()});
    // JSON has no NaN / Inf: nlohmann writes them as null.
    for (const auto& l : j.at("l")) r.sample_losses.push_back(l.is_null() ? std::nan("") : l.get<double>());
    for (const auto& t : j.at("t")) r.sample_timesteps.push_back(t.get<int64_t>());
  }
}

fs::path Trainer::Impl::save_checkpoint(CheckpointStore& store) {
  state.data = data->position();
  state.loss_scale = scaler.state();
  CheckpointWrite w;
  state.world_size = reducer->world_size();
  state.data_by_rank.clear();
  state.bucket_order = reducer->bucket_order();
  if (reducer->world_size() > 1) {
    // Every rank's generator states and sampler position travel to rank 0, which writes.
    const at::Tensor cpu = at::detail::getDefaultCPUGenerator().get_state();
    const at::Tensor mine = rng->state();
    nlohmann::json j = {{"data", state.data},
                        {"train", std::vector<uint8_t>(mine.data_ptr<uint8_t>(), mine.data_ptr<uint8_t>() + mine.numel())},
                        {"cpu", std::vector<uint8_t>(cpu.data_ptr<uint8_t>(), cpu.data_ptr<uint8_t>() + cpu.numel())}};
    const auto all = reducer->gather(j.dump());
    for (size_t r = 0; r < all.size(); ++r) {
      const auto jr = nlohmann::json::parse(all[r]);
      state.data_by_rank.push_back(jr.at("data"));
      if (r == 0) continue;
      auto bytes = [](const nlohmann::json& v) {
        const auto b = v.get<std::vector<uint8_t>>();
        return at::tensor(at::ArrayRef<uint8_t>(b)).clone();
      };
      w.other_train_rng.push_back(bytes(jr.at("train")));
      w.other_cpu_rng.push_back(bytes(jr.at("cpu")));
    }
  }
  // ZeRO-1: every rank's optimizer shard goes into the checkpoint rank 0 is building.
  const bool sharded = !owners.empty();
  if (!root()) {
    if (sharded) {
      reducer->barrier();  // rank 0 writes its files (may take long at full size)
      const fs::path tmp = reducer->gather("").front();
      write_optimizer_state(tmp / fmt::format("optimizer.rank{}.safetensors", reducer->rank()), *optimizer);
      reducer->barrier();
    }
    reducer->barrier();  // rank 0 renames it into place
    return {};
  }
  if (sharded)
    w.before_manifest = [this](const fs::path& tmp) {
      reducer->barrier();
      reducer->gather(fs::absolute(tmp).string());  // other ranks may run elsewhere
      reducer->barrier();  // the other ranks have written their shards
    };
  w.parts = &parts;
  w.trainable = trainable.get();
  w.optimizer = optimizer.get();
  w.ema = ema.get();
  w.rng = rng.get();
  w.stage = cfg.stage;
  w.state = state;
  last_checkpoint = store.save(w);
  spdlog::info("checkpoint: {}", last_checkpoint.string());
  reducer->barrier();
  return last_checkpoint;
}

void Trainer::Impl::write_final(const fs::path& dir) {
  const fs::path tmp = dir.parent_path() / (dir.filename().string() + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  write_model_folder(tmp, parts, trainable->params(), cfg.stage, final_step >= 0 ? final_step : state.step, state.config);
  fs::remove_all(dir);
  fs::rename(tmp, dir);
  // LoRA: the adapters on their own as well (PEFT names; `hallo animate --lora`, `hallo lora merge`).
  const nn::LoraConfig lora = nn::LoraConfig::from_json(parts.net_config.value("lora", nlohmann::json()), "net config");
  if (lora.enabled()) nn::save_lora(dir.parent_path() / (dir.filename().string() + "_lora.safetensors"), *m.net, lora);
  if (ema) {
    // The averaged weights as a second model folder next to it (<dir>_ema).
    const fs::path edir = dir.parent_path() / (dir.filename().string() + "_ema");
    const fs::path etmp = dir.parent_path() / (edir.filename().string() + ".tmp-" + std::to_string(::getpid()));
    fs::remove_all(etmp);
    {
      EmaSwap swap(ema.get());
      write_model_folder(etmp, parts, trainable->params(), cfg.stage, state.step, state.config);
      if (lora.enabled())
        nn::save_lora(dir.parent_path() / (edir.filename().string() + "_lora.safetensors"), *m.net, lora);
    }
    fs::remove_all(edir);
    fs::rename(etmp, edir);
  }
}

TrainResult Trainer::run() {
  auto& s = *impl_;
  s.run_dir = run_dir_of(s.cfg, s.opt);
  TrainResult result;
  result.run_dir = s.run_dir;
  if (s.opt.dry_run) {
    s.print_plan(s.data->shape());
    return result;
  }
  fs::create_directories(s.run_dir);
  CheckpointStore store(s.run_dir / "checkpoints", s.cfg.checkpoints_total_limit, /*cleanup=*/s.root());
  const std::optional<fs::path> resume_from = resolve_resume(s.opt.resume, s.cfg.resume_from_checkpoint, store);
  spdlog::info("data: {}", s.data->describe());
  s.setup(resume_from);
  s.reducer->barrier();  // rank 0 wrote the run files (frozen weights: minutes at full size)
  spdlog::info("trainable: {} tensors, {:.2f} M values (stage {}); run folder {}", s.trainable->size(),
               static_cast<double>(s.trainable->numel()) / 1e6, s.cfg.stage, s.run_dir.string());

  const int64_t max_steps = s.cfg.solver.max_train_steps;
  const bool root = s.root();  // rank 0 logs, checkpoints, validates; every rank trains
  std::optional<RunLog> log;
  if (root) log.emplace(s.run_dir, s.resumed ? s.state.step : -1);
  StopSignal stop;
  ProgressBar bar("train", static_cast<uint64_t>(max_steps), " steps", static_cast<uint64_t>(s.state.step));
  if (!root) bar.disable();
  Optimization opt{s.trainable.get(), s.optimizer.get(), s.reducer.get(), s.cfg.solver.max_grad_norm};
  if (!s.owners.empty()) {
    opt.owners = &s.owners;
    opt.owned = &s.owned;
  }
  if (s.scaler.enabled()) opt.scaler = &s.scaler;
  const int world = s.reducer->world_size();
  const int64_t samples_per_step = int64_t{s.cfg.data.train_bs} * s.cfg.solver.gradient_accumulation_steps * world;
  const size_t dataset_clips = s.data->size();
  StepPrinter printer(s.state.step, max_steps);
  s.early.patience = s.cfg.val.early_stop_patience;
  s.early.min_delta = s.cfg.val.early_stop_min_delta;
  if (s.early.patience > 0 && !s.heldout) spdlog::warn("val.early_stop_patience: no held-out clip, so no early stop");
  if (s.early.patience > 0 && s.resumed)
    spdlog::warn("val.early_stop_patience: the best held-out loss is not kept in checkpoints; it restarts at this resume");
  if (s.heldout && !s.resumed && root) {
    const double h = s.heldout_loss();
    log->write(0, {{"heldout_loss", h}});
    spdlog::info("held-out loss before training: {:.5f}", h);
    s.note_heldout(0, h);
  }
  if (s.heldout && !s.resumed) s.reducer->barrier();

  while (s.state.step < max_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto micro = s.next_micro_batches();
    StepReport r = optimization_step(s.m, s.settings, opt, micro, s.lr.lr_at(s.state.step + 1));
    if (world > 1) s.gather_step_statistics(r);  // the per-sample losses and decisions of every rank
    s.state.step += 1;
    if (s.ema && r.applied) s.ema->update(s.state.step);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const auto bad = s.data->bad_clips();
    if (!bad.empty() && static_cast<double>(bad.size()) > s.cfg.data.max_bad_clip_fraction * static_cast<double>(dataset_clips)) {
      std::string list;
      for (const auto& b : bad) list += "\n  " + b;
      fail("{} of {} clips are unreadable, more than data.max_bad_clip_fraction = {}:{}", bad.size(), dataset_clips,
           s.cfg.data.max_bad_clip_fraction, list);
    }
    if (!r.applied && r.overflow && s.scaler.scale() >= 1.0) {
      // fp16 gradients overflowed the loss scale: GradScaler's normal skip, not a failure
      // (the scale is now lower). Only a scale pushed below 1 counts as non-finite training.
      s.state.skipped_steps += 1;
      spdlog::info("step {} skipped: gradients overflowed loss scale {} (now {})", s.state.step, r.loss_scale,
                   s.scaler.scale());
    } else if (!r.applied) {
      s.state.consecutive_nonfinite += 1;
      s.state.skipped_steps += 1;
      spdlog::warn("step {} skipped: non-finite {} (loss {}, first non-finite parameter: {})", s.state.step, r.nonfinite,
                   r.loss, r.nonfinite_param.empty() ? "none" : r.nonfinite_param);
      if (s.state.consecutive_nonfinite >= s.cfg.solver.max_consecutive_nonfinite)
        fail("{} steps in a row had a non-finite loss or gradients; stopped at step {} (loss {}, first non-finite "
             "parameter: {})",
             s.state.consecutive_nonfinite, s.state.step, r.loss, r.nonfinite_param.empty() ? "none" : r.nonfinite_param);
    } else {
      s.state.consecutive_nonfinite = 0;
    }
    std::optional<double> held;
    const bool heldout_due = s.heldout && (s.state.step % s.cfg.val.loss_steps == 0 || s.state.step == max_steps);
    if (root && heldout_due) {
      EmaSwap swap(s.cfg.ema.for_validation ? s.ema.get() : nullptr);
      held = s.heldout_loss();
    }
    if (root && held) s.note_heldout(s.state.step, *held);
    if (root) s.log_step(*log, r, secs, samples_per_step, held);
    // The other ranks wait while rank 0 scores the held-out batch (a long barrier: the
    // next collective would otherwise time out at full size).
    if (world > 1 && heldout_due) s.reducer->barrier();
    bar.set_suffix(fmt::format("loss {:.4f} lr {:.2e} {:.2f} samples/s", r.loss, r.lr, samples_per_step / secs));
    bar.update(static_cast<uint64_t>(s.state.step));
    if (const auto eta = printer.due(s.state.step, bar.enabled() || !root)) {
      spdlog::info("step {}/{} loss {:.5f} lr {:.3g} grad_norm {:.4g} {:.2f} s/step ETA {:.0f} s{}", s.state.step, max_steps,
                   r.loss, r.lr, r.grad_norm, secs, *eta, held ? fmt::format(" held-out loss {:.5f}", *held) : "");
    }

    // Every rank stops at the same step (a signal may reach the ranks at different steps).
    const int sig = world > 1 ? static_cast<int>(s.reducer->max(stop.received())) : stop.received();
    bool early_stop = heldout_due && root && s.early.should_stop();
    if (world > 1 && heldout_due) early_stop = s.reducer->max(early_stop ? 1 : 0) > 0;
    const bool periodic = s.cfg.checkpointing_steps > 0 && s.state.step % s.cfg.checkpointing_steps == 0;
    if (periodic || sig || early_stop || s.state.step == max_steps) s.save_checkpoint(store);
    if (early_stop) {
      spdlog::info("early stop at step {}: the held-out loss has not improved for {} evaluations; final/ holds step {} "
                   "(held-out loss {:.5f})",
                   s.state.step, s.early.bad, s.early.best_step, s.early.best);
      break;
    }
    const int every = s.cfg.val.validation_steps;
    const bool validation_due = every > 0 && (s.state.step % every == 0 || s.state.step == 1) && !sig;
    if (root && s.validator && validation_due) {
      EmaSwap swap(s.cfg.ema.for_validation ? s.ema.get() : nullptr);
      const fs::path video = s.validator->render(s.m, s.state.step, s.run_dir / "validation");
      spdlog::info("validation: {}", video.string());
    }
    // The other ranks wait while rank 0 renders (a barrier with a long timeout).
    if (world > 1 && validation_due) s.reducer->barrier();
    if (sig) {
      bar.finish();
      return stopped_by_signal(sig, s.state.step, result, s.last_checkpoint);
    }
  }
  bar.finish();
  if (root && !s.best.empty() && s.early.best_step != s.state.step) {
    // Early stop / patience: final/ gets the best evaluation's weights.
    at::NoGradGuard ng;
    const auto& params = s.trainable->params();
    for (size_t i = 0; i < params.size(); ++i) params[i].param.detach().copy_(s.best[i]);
    s.final_step = s.early.best_step;
  }
  if (root) s.write_final(s.run_dir / "final");
  s.reducer->barrier();
  result.step = s.state.step;
  result.final_model = s.run_dir / "final";
  result.last_checkpoint = s.last_checkpoint;
  spdlog::info("done: {} steps; model folder {}", s.state.step, result.final_model.string());
  return result;
}

}  // namespace hallo::trainer
