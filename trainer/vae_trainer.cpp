#include "trainer/vae_trainer.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/io/hf_config.h"
#include "model/io/state_dict.h"
#include "model/nn/loader.h"
#include "trainer/adamw.h"
#include "trainer/checkpoint.h"
#include "trainer/gradients.h"
#include "trainer/lr_schedule.h"
#include "trainer/model_folder.h"
#include "trainer/model_setup.h"
#include "trainer/run_log.h"
#include "trainer/step_rng.h"
#include "trainer/run_loop.h"
#include "trainer/stop_signal.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

// A batch's frames as images: targets then references, [N, 3, H, W] in [-1, 1], and
// each image's face mask [N, 1, H, W] (the clip's face-locator region).
struct Images {
  at::Tensor x, face;
};

Images images_of(const TrainBatch& b) {
  if (!b.target_pixels.defined() || !b.ref_pixels.defined())
    fail("stage vae needs frames as pixels; the batch carries none");
  const auto F = b.frames(), S = b.ref_frames();
  Images im;
  im.x = at::cat({b.target_pixels.flatten(0, 1), b.ref_pixels.flatten(0, 1)}, 0);
  if (b.face_region.defined()) {
    const at::Tensor f = b.face_region.narrow(1, 0, 1);  // [B, 1, H, W]
    im.face = at::cat({f.repeat_interleave(F, 0), f.repeat_interleave(S, 0)}, 0);
  }
  return im;
}

}  // namespace

struct VaeTrainer::Impl {
  TrainConfig cfg;
  TrainOptions opt;
  std::unique_ptr<BatchSource> data;
  fs::path run_dir;

  model::AutoencoderKL vae{nullptr};
  nlohmann::json vae_config;
  std::vector<NamedParam> params, buffers;
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<StepRng> rng;
  LrSchedule lr;
  TrainerState state;
  bool resumed = false;
  fs::path last_checkpoint;
  std::optional<TrainBatch> heldout;

  void setup(const std::optional<fs::path>& resume_from);
  std::vector<NamedParam> weights() const {
    std::vector<NamedParam> all = params;
    all.insert(all.end(), buffers.begin(), buffers.end());
    return all;
  }
  double heldout_loss();
  nlohmann::json fitted_config();
  fs::path save_checkpoint(CheckpointStore& store);
};

// Latent diffusion wants unit-variance latents: scaling_factor = 1 / std of posterior
// samples of the held-out batch (Rombach et al.'s scale_by_std; SD's 0.18215 was found
// the same way). Its own generator and a fixed batch: a pure function of the weights.
nlohmann::json VaeTrainer::Impl::fitted_config() {
  nlohmann::json c = vae_config;
  if (!heldout) {
    spdlog::warn("stage vae: no held-out batch (val.loss_steps 0): scaling_factor stays {} instead of being fitted",
                 c.value("scaling_factor", 0.18215));
    return c;
  }
  at::NoGradGuard no_grad;
  const bool was_training = vae->is_training();
  vae->eval();
  at::Generator g = at::make_generator<at::CPUGeneratorImpl>(cfg.seed ^ 0x7363616c65ull);
  const auto post = vae->encode(images_of(*heldout).x);
  std::vector<at::Tensor> zs;
  for (int i = 0; i < 4; ++i) zs.push_back(post.mean + post.std() * at::randn(post.mean.sizes(), g, post.mean.options()));
  vae->train(was_training);
  const double sd = at::cat(zs).std().item<double>();
  if (std::isfinite(sd) && sd > 0) c["scaling_factor"] = 1.0 / sd;
  return c;
}

VaeTrainer::VaeTrainer(TrainConfig config, TrainOptions options, std::unique_ptr<BatchSource> data)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  impl_->opt = std::move(options);
  impl_->data = std::move(data);
  if (!impl_->data) fail("vae trainer: no data source");
  if (impl_->cfg.stage != kStageVae) fail("vae trainer: the config is stage {}, not vae", impl_->cfg.stage);
}

VaeTrainer::~VaeTrainer() = default;

void VaeTrainer::Impl::setup(const std::optional<fs::path>& resume_from) {
  if (resume_from) {
    state = read_trainer_state(*resume_from);
    const fs::path dir = *resume_from / "model";
    vae_config = io::load_json_file(dir / "config.json");
    vae = model::AutoencoderKL(model::VaeConfig::from_json(vae_config, (dir / "config.json").string()));
    nn::load_weights(*vae, io::StateDict::open(dir / "diffusion_pytorch_model.safetensors"), {true, model::vae_translate_legacy_key});
    resumed = true;
  } else {
    VaeBundle b = build_vae(cfg, /*need_vae=*/true);
    spdlog::info("init: {}", b.report);
    vae = b.vae;
    vae_config = b.config;
    state.step = 0;
  }
  state.config = cfg.to_json();
  const auto vc = vae->config();
  const int64_t down = int64_t{1} << (vc.block_out_channels.size() - 1);
  const DataShape shape = data->shape();
  if (shape.height % down != 0 || shape.width % down != 0)
    fail("stage vae: frames of {}x{} are not a multiple of the VAE's downsampling ({})", shape.width, shape.height, down);
  vae->train();
  for (const auto& item : vae->named_parameters()) {
    item.value().set_requires_grad(true);
    params.push_back({item.key(), item.value()});
  }
  for (const auto& item : vae->named_buffers()) buffers.push_back({item.key(), item.value()});

  optimizer = std::make_unique<AdamW>(AdamWOptions{cfg.solver.adam_beta1, cfg.solver.adam_beta2,
                                                   cfg.solver.adam_epsilon, cfg.solver.adam_weight_decay});
  lr.kind = cfg.solver.lr_scheduler;
  lr.base_lr = cfg.effective_learning_rate(1);
  lr.warmup_steps = cfg.solver.lr_warmup_steps;
  lr.total_steps = cfg.solver.max_train_steps;
  lr.num_cycles = cfg.solver.lr_num_cycles;
  rng = std::make_unique<StepRng>(cfg.seed, 0);
  if (resume_from) {
    restore_optimizer(*resume_from, params, *optimizer);
    restore_rng(*resume_from, *rng);
    data->seek(state.data);
    spdlog::info("resumed from {} at step {}", resume_from->string(), state.step);
  }
  if (cfg.val.loss_steps > 0) heldout = data->heldout_batch(cfg.data.train_bs);
  fs::create_directories(run_dir);
  write_file_atomic(run_dir / "config.json", cfg.to_json().dump(2) + "\n");
}

double VaeTrainer::Impl::heldout_loss() {
  // Reconstruction through the posterior mean: no noise, the same number every time.
  at::NoGradGuard no_grad;
  const Images im = images_of(*heldout);
  const auto post = vae->encode(im.x);
  return (vae->decode(post.mean) - im.x).abs().mean().item<double>();
}

fs::path VaeTrainer::Impl::save_checkpoint(CheckpointStore& store) {
  state.data = data->position();
  CheckpointWrite w;
  w.write_model = [this](const fs::path& dir) { write_vae_folder(dir, fitted_config(), weights()); };
  w.optimizer = optimizer.get();
  w.rng = rng.get();
  w.stage = kStageVae;
  w.state = state;
  last_checkpoint = store.save(w);
  spdlog::info("checkpoint: {}", last_checkpoint.string());
  return last_checkpoint;
}

TrainResult VaeTrainer::run() {
  auto& s = *impl_;
  s.run_dir = run_dir_of(s.cfg, s.opt);
  TrainResult result;
  result.run_dir = s.run_dir;
  if (s.opt.dry_run) {
    VaeBundle b = build_vae(s.cfg, true, /*load=*/false);
    int64_t n = 0;
    for (const auto& p : b.vae ? b.vae->parameters() : std::vector<at::Tensor>{}) n += p.numel();
    fmt::print("resolved config:\n{}\n\ndata: {}\n\n", s.cfg.to_json().dump(2), s.data->describe());
    fmt::print("stage vae: {} trainable values ({:.2f} M), {:.3f} GiB weights + gradients + AdamW state\n", n,
               static_cast<double>(n) / 1e6, static_cast<double>(n) * 16 / (1 << 30));
    return result;
  }
  fs::create_directories(s.run_dir);
  CheckpointStore store(s.run_dir / "checkpoints", s.cfg.checkpoints_total_limit);
  const std::optional<fs::path> resume_from = resolve_resume(s.opt.resume, s.cfg.resume_from_checkpoint, store);
  spdlog::info("data: {}", s.data->describe());
  s.setup(resume_from);
  int64_t n = 0;
  for (const auto& p : s.params) n += p.param.numel();
  spdlog::info("stage vae: {} tensors, {:.2f} M values; run folder {}", s.params.size(), static_cast<double>(n) / 1e6,
               s.run_dir.string());

  const int64_t max_steps = s.cfg.solver.max_train_steps;
  RunLog log(s.run_dir, s.resumed ? s.state.step : -1);
  StopSignal stop;
  ProgressBar bar("train vae", static_cast<uint64_t>(max_steps), " steps", static_cast<uint64_t>(s.state.step));
  StepPrinter printer(s.state.step, max_steps);
  if (s.heldout && !s.resumed) {
    const double h = s.heldout_loss();
    log.write(0, {{"heldout_loss", h}});
    spdlog::info("held-out reconstruction error (mean |x - x_hat|) before training: {:.5f}", h);
  }

  while (s.state.step < max_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    const double step_lr = s.lr.lr_at(s.state.step + 1);
    double loss = 0, recon = 0, kl = 0;
    for (int g = 0; g < s.cfg.solver.gradient_accumulation_steps; ++g) {
      const Images im = images_of(s.data->next(s.cfg.data.train_bs));
      const auto post = s.vae->encode(im.x);
      const at::Tensor z = post.mean + post.std() * at::randn(post.mean.sizes(), s.rng->generator(), post.mean.options());
      const auto terms = losses::vae_loss(im.x, s.vae->decode(z), post, im.face, s.cfg.vae_loss);
      (terms.loss / s.cfg.solver.gradient_accumulation_steps).backward();
      loss += terms.loss.item<double>() / s.cfg.solver.gradient_accumulation_steps;
      recon += terms.recon.item<double>() / s.cfg.solver.gradient_accumulation_steps;
      kl += terms.kl.item<double>() / s.cfg.solver.gradient_accumulation_steps;
    }
    const std::string bad = first_nonfinite(s.params);
    ClipResult clip;
    if (bad.empty() && std::isfinite(loss)) clip = clip_grad_norm(s.params, s.cfg.solver.max_grad_norm);
    if (bad.empty() && std::isfinite(loss) && std::isfinite(clip.total_norm)) {
      s.optimizer->step(s.params, step_lr);
      s.state.consecutive_nonfinite = 0;
    } else {
      s.state.consecutive_nonfinite += 1;
      s.state.skipped_steps += 1;
      spdlog::warn("step {} skipped: non-finite {}", s.state.step + 1,
                   !bad.empty() ? "gradient of " + bad : std::isfinite(loss) ? std::string("gradient norm") : std::string("loss"));
      if (s.state.consecutive_nonfinite >= s.cfg.solver.max_consecutive_nonfinite)
        fail("{} steps in a row had a non-finite loss or gradients; stopped at step {}", s.state.consecutive_nonfinite,
             s.state.step + 1);
    }
    for (auto& p : s.params) p.param.mutable_grad() = at::Tensor();
    s.state.step += 1;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::optional<double> held;
    if (s.heldout && (s.state.step % s.cfg.val.loss_steps == 0 || s.state.step == max_steps)) held = s.heldout_loss();
    std::vector<std::pair<std::string, double>> scalars = {
        {"loss", loss},         {"recon_l1", recon},         {"kl", kl},
        {"lr", step_lr},        {"grad_norm", clip.total_norm}, {"clip_coef", clip.coef},
        {"step_time_s", secs},  {"peak_rss_gib", peak_rss_gib()}};
    if (held) scalars.emplace_back("heldout_loss", *held);
    log.write(s.state.step, scalars);
    bar.set_suffix(fmt::format("loss {:.4f} |x-x^| {:.4f} KL {:.1f}", loss, recon, kl));
    bar.update(static_cast<uint64_t>(s.state.step));
    if (const auto eta = printer.due(s.state.step, bar.enabled())) {
      spdlog::info("step {}/{} loss {:.5f} |x-x^| {:.5f} KL {:.1f} {:.2f} s/step ETA {:.0f} s{}", s.state.step, max_steps,
                   loss, recon, kl, secs, *eta, held ? fmt::format(" held-out |x-x^| {:.5f}", *held) : "");
    }

    const int sig = stop.received();
    const bool periodic = s.cfg.checkpointing_steps > 0 && s.state.step % s.cfg.checkpointing_steps == 0;
    if (periodic || sig || s.state.step == max_steps) s.save_checkpoint(store);
    if (sig) {
      bar.finish();
      return stopped_by_signal(sig, s.state.step, result, s.last_checkpoint);
    }
  }
  bar.finish();
  const fs::path final_dir = s.run_dir / "final", fresh = s.run_dir / "final.new";
  const nlohmann::json fitted = s.fitted_config();
  spdlog::info("scaling_factor {:.5f} (1 / std of the fitted latents)", fitted.value("scaling_factor", 0.0));
  fs::remove_all(fresh);
  write_vae_folder(fresh, fitted, s.weights());
  fs::remove_all(final_dir);  // the old one goes only once the new one is complete
  fs::rename(fresh, final_dir);
  result.step = s.state.step;
  result.final_model = final_dir;
  result.last_checkpoint = s.last_checkpoint;
  spdlog::info("done: {} steps; VAE folder {} (vae_model_path)", s.state.step, final_dir.string());
  return result;
}

}  // namespace hallo::trainer
