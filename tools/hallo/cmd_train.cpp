// hallo train --config configs/train/stage2.yaml [--set KEY=VALUE ...] [--out RUN_DIR]
//             [--resume auto|CHECKPOINT_DIR] [--max-steps N] [--dry-run] [--device auto|cpu|cuda[:N]]
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "core/device.h"
#include "core/error.h"
#include "model/io/hf_config.h"
#include "tools/hallo/commands.h"
#include "trainer/data/shard_source.h"
#include "trainer/data/shard_validator.h"
#include "trainer/checkpoint.h"
#include "trainer/trainer.h"
#include "trainer/vae_trainer.h"
#ifdef HALLO_HAVE_DIST
#include "trainer/dist/c10d_reducer.h"
#include "trainer/dist/comm.h"
#include "trainer/dist/dist_env.h"
#include "trainer/dist/launcher.h"
#endif

namespace hallo::cli {

namespace fs = std::filesystem;

Command register_train(CLI::App& app, const GlobalOptions& g) {
  struct Opts {
    std::string config, out, resume, device = "auto", backend = "auto";
    std::vector<std::string> sets;
    int64_t max_steps = 0;
    bool dry_run = false;
    int nproc = 1;
    double dist_timeout = 60, bucket_mb = 25;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("train", "Train Hallo stage 1 or stage 2 (or fit a VAE: stage vae) on `hallo prepare` shards");
  sub->add_option("--config", o->config, "training config (configs/train/*.yaml)")->required();
  sub->add_option("--set", o->sets, "override a config key, e.g. --set solver.learning_rate=2e-5 (repeatable)");
  sub->add_option("--out", o->out, "run folder (default: <output_dir>/<exp_name> of the config)");
  sub->add_option("--resume", o->resume, "'auto' (newest complete checkpoint of the run folder) or a checkpoint folder");
  sub->add_option("--max-steps", o->max_steps, "train until this step (overrides solver.max_train_steps)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--dry-run", o->dry_run, "print the resolved config, trainable parameters and memory estimate; train nothing");
  sub->add_option("--nproc", o->nproc,
                  "data-parallel ranks on this machine (c10d; one per GPU on CUDA, CPU ranks otherwise); under "
                  "torchrun / srun leave it out: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT are read")
      ->check(CLI::PositiveNumber);
  sub->add_option("--dist-timeout", o->dist_timeout, "seconds a collective may wait before the run fails (a dead rank)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--bucket-mb", o->bucket_mb, "gradient all-reduce bucket size in MiB")->check(CLI::PositiveNumber);
  sub->add_option("--device", o->device,
                  "auto (a GPU when this build has CUDA and sees one, else cpu), cpu, cuda (the local rank's GPU) or "
                  "cuda:N")
      ->capture_default_str();
  sub->add_option("--dist-backend", o->backend, "c10d backend of a multi-process run: auto (nccl on GPUs, else gloo), gloo, nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->capture_default_str();
  return [o, &g]() {
    trainer::TrainConfig cfg = trainer::TrainConfig::load(o->config, o->sets);
    if (o->max_steps > 0) cfg.solver.max_train_steps = static_cast<int>(o->max_steps);

    int rank = 0, world = 1, local_rank = 0;
#ifdef HALLO_HAVE_DIST
    const trainer::dist::DistEnv env = trainer::dist::dist_env_from_environment();
    local_rank = env.local_rank;
    if ((o->nproc > 1 || env.distributed()) && !o->dry_run && o->device.rfind("cuda:", 0) == 0)
      fail("--device {} with {} ranks would put every rank on one GPU; give --device cuda (rank k of a node takes "
           "cuda:LOCAL_RANK)", o->device, std::max(o->nproc, env.world_size));
    if (o->nproc > 1 && !o->dry_run) {
      if (env.distributed()) fail("--nproc {} inside a launched rank (RANK/WORLD_SIZE are set): give one or the other", o->nproc);
      if (cfg.stage == trainer::kStageVae) fail("stage vae trains in one process; drop --nproc");
      // Re-run this command once per rank, with torchrun's environment.
      trainer::dist::LaunchOptions lo;
      lo.nproc = o->nproc;
      lo.args = {"hallo"};
      if (g.verbose) lo.args.push_back("--verbose");
      if (g.quiet) lo.args.push_back("--quiet");
      lo.threads_per_rank = g.threads;
      lo.args.insert(lo.args.end(), {"train", "--config", o->config});
      for (const auto& set : o->sets) lo.args.insert(lo.args.end(), {"--set", set});
      if (!o->out.empty()) lo.args.insert(lo.args.end(), {"--out", o->out});
      if (!o->resume.empty()) lo.args.insert(lo.args.end(), {"--resume", o->resume});
      if (o->max_steps > 0) lo.args.insert(lo.args.end(), {"--max-steps", std::to_string(o->max_steps)});
      lo.args.insert(lo.args.end(), {"--dist-timeout", std::to_string(o->dist_timeout), "--bucket-mb",
                                     std::to_string(o->bucket_mb), "--device", o->device, "--dist-backend", o->backend});
      return trainer::dist::launch_local(lo);
    }
#else
    if (o->nproc > 1) fail("this build has no multi-process training (c10d Gloo headers were missing: libgloo-dev)");
#endif
    // Where this rank computes (the launcher above passes --device on to its ranks).
    c10::Device device = resolve_device(o->device, local_rank);
    if (cfg.stage == trainer::kStageVae && !device.is_cpu()) {
      // The demo's tiny VAE fit (trainer/vae_trainer.h) is CPU code.
      if (o->device != "auto") fail("--device {}: stage vae trains on the CPU", o->device);
      device = c10::Device(c10::kCPU);
    }
#ifdef HALLO_HAVE_DIST
    std::shared_ptr<trainer::dist::Comm> comm;
    if (env.distributed() && !o->dry_run) {
      if (cfg.stage == trainer::kStageVae) fail("stage vae trains in one process; launch it without torchrun/srun");
      comm = trainer::dist::Comm::connect(env, std::chrono::milliseconds(static_cast<int64_t>(o->dist_timeout * 1000)),
                                          o->backend, device);
      rank = env.rank;
      world = env.world_size;
      spdlog::info("rank {} of {} ({}, {}, {}:{})", rank, world, comm->backend(), env.source, env.master_addr,
                   env.master_port);
    }
#endif

    trainer::ShardSourceOptions so = trainer::shard_source_options(cfg, rank, world);
    if (cfg.data.shards.empty()) fail_at(o->config, "data.shards lists no shard directory");
    std::unique_ptr<trainer::Validator> validator;
    if (cfg.val.validation_steps > 0 || cfg.val.loss_steps > 0) {
      // One held-out clip: the validation videos and the held-out loss use it, training never does.
      const fs::path vdir = cfg.val.shards.empty() ? fs::path(cfg.data.shards.front()) : fs::path(cfg.val.shards);
      if (!fs::is_directory(vdir)) fail_at(vdir.string(), "no such shard directory (val.shards / data.shards)");
      const std::string id = trainer::validation_clip_id(vdir, cfg.val.clip);
      for (const auto& d : cfg.data.shards)
        if (fs::exists(d) && fs::equivalent(d, vdir)) so.sampler.exclude_ids.insert(id);
      so.heldout_dir = vdir.string();
      so.heldout_id = id;
      if (cfg.val.validation_steps > 0 && !o->dry_run && cfg.stage != trainer::kStageVae && rank == 0) validator = std::make_unique<trainer::ShardValidator>(cfg, vdir, id);
    }
    auto source = std::make_unique<trainer::ShardSource>(so);

    trainer::TrainOptions to;
    to.rank = rank;
    to.world_size = world;
    to.device = device;
#ifdef HALLO_HAVE_DIST
    if (comm) {
      const auto bucket = static_cast<int64_t>(o->bucket_mb * 1024 * 1024);
      to.make_reducer = [comm, bucket](const std::vector<trainer::NamedParam>& params, bool shard_gradients) {
        return std::make_unique<trainer::dist::C10dReducer>(comm, params, bucket, shard_gradients);
      };
    }
#endif
    to.run_dir = o->out;
    to.resume = o->resume;
#ifdef HALLO_HAVE_DIST
    if (comm) {
      // Rank 0 decides where to resume from and every rank takes that decision, so no
      // rank starts fresh while another resumes (node-local folders, stale caches).
      std::string mine;
      const std::string resume = !o->resume.empty() ? o->resume : (cfg.resume_from_checkpoint == "latest" ? "auto" : "");
      if (rank == 0 && resume == "auto") {
        const auto latest = trainer::CheckpointStore(trainer::run_dir_of(cfg, to) / "checkpoints",
                                                     cfg.checkpoints_total_limit, /*cleanup=*/false).latest();
        if (latest) mine = latest->string();
      } else if (rank == 0) {
        mine = resume;
      }
      to.resume = comm->allgather_bytes(mine, "agreeing on the checkpoint to resume from").front();
      cfg.resume_from_checkpoint.clear();
      const bool visible = to.resume.empty() || fs::is_directory(to.resume);
      if (comm->max(visible ? 0 : 1, "checking every rank sees the checkpoint") > 0)
        fail_at(to.resume, "{} does not see the checkpoint rank 0 resumes from (checkpoints must be on a file system "
                           "every rank reads)", visible ? "another rank" : fmt::format("rank {}", rank));
    }
#endif
    to.dry_run = o->dry_run;
#ifdef HALLO_HAVE_DIST
    to.plan_world_size = o->dry_run ? std::max(o->nproc, env.world_size) : 1;
#else
    to.plan_world_size = o->dry_run ? o->nproc : 1;
#endif
    // The audio settings the shards were prepared with travel into every model folder.
    const fs::path prep = fs::path(cfg.data.shards.front()) / "prepare_config.json";
    if (fs::exists(prep)) {
      const auto pj = io::load_json_file(prep);
      to.prepare_info = pj;
      if (pj.contains("audio")) {
        to.audio_info = pj.at("audio");
        const std::string w2v = to.audio_info.value("wav2vec2_path", std::string());
        if (to.audio_info.value("extractor", std::string()) == "wav2vec2" && !w2v.empty() && fs::exists(w2v))
          to.wav2vec2 = w2v;
      }
    }
    if (cfg.stage == trainer::kStageVae)
      return trainer::VaeTrainer(std::move(cfg), std::move(to), std::move(source)).run().exit_code;
    trainer::Trainer t(std::move(cfg), std::move(to), std::move(source), std::move(validator));
    return t.run().exit_code;
  };
}

}  // namespace hallo::cli
