// hallo train --config configs/train/stage2.yaml [--set KEY=VALUE ...] [--out RUN_DIR]
//             [--resume auto|CHECKPOINT_DIR] [--max-steps N] [--dry-run]
#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/error.h"
#include "model/io/hf_config.h"
#include "tools/hallo/commands.h"
#include "trainer/data/shard_source.h"
#include "trainer/data/shard_validator.h"
#include "trainer/trainer.h"

namespace hallo::cli {

namespace fs = std::filesystem;

Command register_train(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string config, out, resume;
    std::vector<std::string> sets;
    int64_t max_steps = 0;
    bool dry_run = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("train", "Train Hallo stage 1 or stage 2 on `hallo prepare` shards");
  sub->add_option("--config", o->config, "training config (configs/train/*.yaml)")->required();
  sub->add_option("--set", o->sets, "override a config key, e.g. --set solver.learning_rate=2e-5 (repeatable)");
  sub->add_option("--out", o->out, "run folder (default: <output_dir>/<exp_name> of the config)");
  sub->add_option("--resume", o->resume, "'auto' (newest complete checkpoint of the run folder) or a checkpoint folder");
  sub->add_option("--max-steps", o->max_steps, "train until this step (overrides solver.max_train_steps)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--dry-run", o->dry_run, "print the resolved config, trainable parameters and memory estimate; train nothing");
  return [o]() {
    trainer::TrainConfig cfg = trainer::TrainConfig::load(o->config, o->sets);
    if (o->max_steps > 0) cfg.solver.max_train_steps = static_cast<int>(o->max_steps);

    trainer::ShardSourceOptions so = trainer::shard_source_options(cfg);
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
      if (cfg.val.validation_steps > 0 && !o->dry_run) validator = std::make_unique<trainer::ShardValidator>(cfg, vdir, id);
    }
    auto source = std::make_unique<trainer::ShardSource>(so);

    trainer::TrainOptions to;
    to.run_dir = o->out;
    to.resume = o->resume;
    to.dry_run = o->dry_run;
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
    trainer::Trainer t(std::move(cfg), std::move(to), std::move(source), std::move(validator));
    return t.run().exit_code;
  };
}

}  // namespace hallo::cli
