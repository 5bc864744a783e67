// Training configs: upstream's keys and defaults, errors that name the key and the
// file, warnings for upstream keys that are not implemented, --set overrides, and
// the configs shipped in configs/train/.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "core/config_file.h"
#include "core/device.h"
#include "tests/common/error_message.h"
#include "tests/common/temp_dir.h"
#include "trainer/train_config.h"

namespace hallo::trainer {
namespace {

TrainConfig parse(const std::string& yaml) { return TrainConfig::from_json(parse_yaml(yaml, "test.yaml"), "test.yaml"); }

// Runs fn and returns what it logged.
template <typename Fn>
std::string captured_log(Fn&& fn) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  auto old = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  fn();
  spdlog::set_default_logger(old);
  return out.str();
}

TEST(TrainConfig, PresetsCarryUpstreamValues) {
  const TrainConfig s1 = TrainConfig::stage1(), s2 = TrainConfig::stage2();
  EXPECT_EQ(s1.data.train_bs, 8);
  EXPECT_EQ(s2.data.train_bs, 4);
  EXPECT_EQ(s2.data.n_sample_frames, 14);
  EXPECT_EQ(s2.data.n_motion_frames, 2);
  EXPECT_DOUBLE_EQ(s1.solver.learning_rate, 1e-5);
  EXPECT_EQ(s1.solver.max_train_steps, 30000);
  EXPECT_FALSE(s1.solver.gradient_checkpointing);
  EXPECT_TRUE(s2.solver.gradient_checkpointing);
  EXPECT_DOUBLE_EQ(s1.uncond_ratio, 0.1);
  EXPECT_DOUBLE_EQ(s2.uncond_img_ratio, 0.05);
  EXPECT_DOUBLE_EQ(s2.noise_offset, 0.05);
  EXPECT_DOUBLE_EQ(s2.snr_gamma, 5.0);
  // Training forces scaled_linear; validation keeps the yaml's "linear" (upstream).
  EXPECT_EQ(s2.train_scheduler().beta_schedule, sched::BetaSchedule::ScaledLinear);
  EXPECT_EQ(s2.validation_scheduler().beta_schedule, sched::BetaSchedule::Linear);
  EXPECT_EQ(s2.train_scheduler().prediction_type, sched::PredictionType::VPrediction);
  EXPECT_TRUE(s2.train_scheduler().rescale_betas_zero_snr);
}

TEST(TrainConfig, UnknownKeysAreErrorsNamingKeyAndFile) {
  auto msg = test::error_message([] { parse("stage: 2\nsolver:\n  learnin_rate: 1e-4\n"); });
  EXPECT_NE(msg.find("test.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("solver.learnin_rate"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 1\nbogus: 3\n"); });
  EXPECT_NE(msg.find("unknown key 'bogus'"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 2\ndata:\n  train_meta_paths: [a.json]\n"); });
  EXPECT_NE(msg.find("data.shards"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 3\n"); });
  EXPECT_NE(msg.find("'stage' must be 1, 2 or vae"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 2\nsolver:\n  lr_scheduler: exponential\n"); });
  EXPECT_NE(msg.find("lr_scheduler"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 2\nquirks:\n  tile_rows: true\n"); });
  EXPECT_NE(msg.find("quirks.tile_rows"), std::string::npos) << msg;
  msg = test::error_message([] { parse("stage: 2\nsolver:\n  checkpoint_keep_blocks: [up_block.1]\n"); });
  EXPECT_NE(msg.find("'up_block.1' is not a block"), std::string::npos) << msg;
  EXPECT_NE(msg.find("test.yaml"), std::string::npos) << msg;
  EXPECT_EQ(parse("stage: 2\nsolver:\n  checkpoint_keep_blocks: [up_blocks.1, up_blocks.2]\n").solver.checkpoint_keep_blocks,
            (std::vector<std::string>{"up_blocks.1", "up_blocks.2"}));
}

TEST(TrainConfig, UnimplementedUpstreamKeysWarnWithTheReason) {
  const std::string log = captured_log([] {
    parse("stage: 2\nuncond_ia_ratio: 0.05\nsolver:\n  use_8bit_adam: true\n  "
          "enable_xformers_memory_efficient_attention: true\nweight_dtype: fp16\n");
  });
  EXPECT_NE(log.find("uncond_ia_ratio' is ignored: upstream never reads it"), std::string::npos) << log;
  EXPECT_NE(log.find("use_8bit_adam"), std::string::npos) << log;
  EXPECT_NE(log.find("xformers"), std::string::npos) << log;
  EXPECT_NE(log.find("weight_dtype: fp16"), std::string::npos) << log;
}

TEST(TrainConfig, OverridesAndCompatSwitch) {
  nlohmann::json j = parse_yaml("stage: 2\nsolver:\n  learning_rate: 1e-5\n", "t");
  apply_override(j, "solver.learning_rate=2e-5", "t");
  apply_override(j, "data.shards=[a, b]", "t");
  apply_override(j, "quirks.tile_reference_rows=true", "t");
  const TrainConfig c = TrainConfig::from_json(j, "t");
  EXPECT_DOUBLE_EQ(c.solver.learning_rate, 2e-5);
  EXPECT_EQ(c.data.shards, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(c.quirks.tile_reference_rows);
  EXPECT_FALSE(c.quirks.average_mse_before_snr_weighting);
  EXPECT_NE(test::error_message([&] { apply_override(j, "no_equals_sign", "t"); }).find("KEY=VALUE"), std::string::npos);

  const TrainConfig compat = parse("stage: 2\nupstream_compat: true\nquirks:\n  tile_reference_rows: false\n");
  EXPECT_TRUE(compat.quirks.average_mse_before_snr_weighting);
  EXPECT_TRUE(compat.quirks.reentrant_checkpoint_grads);
  EXPECT_TRUE(compat.quirks.four_zero_motion_frames);
  EXPECT_FALSE(compat.quirks.tile_reference_rows);  // an explicit quirk wins
  // Stage-2-only quirks do not apply in stage 1.
  const TrainConfig s1 = parse("stage: 1\nupstream_compat: true\n");
  EXPECT_FALSE(s1.effective_quirks().average_mse_before_snr_weighting);
}

TEST(TrainConfig, ResolvedConfigRoundTrips) {
  const TrainConfig c = parse("stage: 2\nsolver:\n  learning_rate: 3e-4\n  lr_scheduler: cosine\ndata:\n  shards: [x]\n");
  const TrainConfig again = TrainConfig::from_json(c.to_json(), "resolved");
  EXPECT_EQ(again.to_json(), c.to_json());
}

TEST(TrainConfig, ShippedConfigsParse) {
  const std::filesystem::path dir = std::filesystem::path(HALLO_SOURCE_DIR) / "configs" / "train";
  for (const char* f : {"stage1.yaml", "stage2.yaml", "tiny_stage1.yaml", "tiny_stage2.yaml"}) {
    const TrainConfig c = TrainConfig::load(dir / f);
    EXPECT_FALSE(c.data.shards.empty()) << f;
    EXPECT_FALSE(c.upstream_compat) << f;
  }
  const TrainConfig s2 = TrainConfig::load(dir / "stage2.yaml");
  EXPECT_EQ(s2.data.train_width, 512);
  EXPECT_EQ(s2.data.train_bs, 4);
  EXPECT_DOUBLE_EQ(s2.solver.learning_rate, 1e-5);
  EXPECT_EQ(s2.solver.max_train_steps, 30000);
  EXPECT_TRUE(s2.quirks.skip_motion_in_plain_blocks);
  EXPECT_FALSE(s2.quirks.reentrant_checkpoint_grads);
  const TrainConfig s1 = TrainConfig::load(dir / "stage1.yaml");
  EXPECT_EQ(s1.data.train_bs, 8);
  // The demo's recipe configs: VAE fit, stage 1, stage 2.
  const std::filesystem::path demo = std::filesystem::path(HALLO_SOURCE_DIR) / "recipes" / "demo";
  const TrainConfig v = TrainConfig::load(demo / "vae.yaml");
  EXPECT_EQ(v.stage, kStageVae);
  EXPECT_GT(v.vae_loss.face_weight, 0);
  EXPECT_EQ(TrainConfig::load(demo / "stage1.yaml").stage, 1);
  EXPECT_EQ(TrainConfig::load(demo / "stage2.yaml").stage, 2);
}

TEST(TrainConfig, MixedPrecisionAndLossScale) {
  // The config accepts bf16 / fp16 (the trainer refuses them on a CPU device).
  EXPECT_EQ(parse("solver: {mixed_precision: bf16}\n").solver.mixed_precision, "bf16");
  const TrainConfig fp16 = parse("solver: {mixed_precision: fp16}\n");
  EXPECT_TRUE(fp16.loss_scaling());  // auto: on with fp16
  EXPECT_FALSE(parse("solver: {mixed_precision: bf16}\n").loss_scaling());  // stage 2
  // Stage 1 with bf16: the float16 reference bank carries gradients, so auto scales.
  EXPECT_TRUE(parse("stage: 1\nsolver: {mixed_precision: bf16}\n").loss_scaling());
  EXPECT_FALSE(parse("stage: 1\nsolver: {mixed_precision: bf16}\nquirks: {bank_float16: false}\n").loss_scaling());
  EXPECT_FALSE(parse("solver: {mixed_precision: fp16, loss_scale: none}\n").loss_scaling());
  EXPECT_TRUE(parse("solver: {loss_scale: dynamic}\n").loss_scaling());
  const std::string bad = test::error_message([] { parse("solver: {mixed_precision: fp8}\n"); });
  EXPECT_NE(bad.find("no, bf16 or fp16"), std::string::npos) << bad;
  const std::string ls = test::error_message([] { parse("solver: {loss_scale: static}\n"); });
  EXPECT_NE(ls.find("solver.loss_scale"), std::string::npos) << ls;
  const std::string p2 = test::error_message([] { parse("solver: {initial_loss_scale: 1000}\n"); });
  EXPECT_NE(p2.find("power of two"), std::string::npos) << p2;
  EXPECT_EQ(parse("solver: {mixed_precision: bf16, frozen_dtype: bf16}\n").solver.frozen_dtype, "bf16");
  const std::string fz = test::error_message([] { parse("solver: {frozen_dtype: bf16}\n"); });
  EXPECT_NE(fz.find("needs solver.mixed_precision"), std::string::npos) << fz;
  const std::string f8 = test::error_message([] { parse("solver: {mixed_precision: bf16, frozen_dtype: fp8}\n"); });
  EXPECT_NE(f8.find("solver.frozen_dtype"), std::string::npos) << f8;
}

TEST(Device, ResolvesNamesAndRefusesWhatThisBuildCannotRun) {
  EXPECT_TRUE(resolve_device("cpu").is_cpu());
  EXPECT_TRUE(resolve_device("CPU").is_cpu());
  EXPECT_EQ(resolve_device("auto").is_cuda(), cuda_available());
  const std::string bad = test::error_message([] { resolve_device("tpu", 0, "--device"); });
  EXPECT_NE(bad.find("--device 'tpu'"), std::string::npos) << bad;
  if (cuda_available()) {
    EXPECT_EQ(resolve_device("cuda", 0).index(), 0);
    EXPECT_NE(test::error_message([] { resolve_device("cuda:999"); }).find("does not exist"), std::string::npos);
  } else {
    for (const char* n : {"cuda", "cuda:0"}) {
      const std::string e = test::error_message([&] { resolve_device(n); });
      EXPECT_NE(e.find("has no CUDA or sees no GPU"), std::string::npos) << e;
    }
    EXPECT_FALSE(device_peak(c10::Device(c10::kCPU)).has_value());
  }
  EXPECT_NE(test::error_message([] { resolve_device("cuda:x"); }).find("cuda:x"), std::string::npos);
}

TEST(TrainConfig, ZeroStage) {
  EXPECT_EQ(parse("solver: {zero_stage: 2}\n").solver.zero_stage, 2);
  const std::string e = test::error_message([] { parse("solver: {zero_stage: 3}\n"); });
  EXPECT_NE(e.find("test.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("solver.zero_stage must be 0 (none), 1 (sharded AdamW state) or 2"), std::string::npos) << e;
}

TEST(TrainConfig, VaeStage) {
  const TrainConfig v = parse("stage: vae\nvae_loss:\n  kl_weight: 1e-5\nmodel:\n  vae: {latent_channels: 4}\n");
  EXPECT_EQ(v.stage, kStageVae);
  EXPECT_DOUBLE_EQ(v.vae_loss.kl_weight, 1e-5);
  EXPECT_EQ(v.to_json().at("stage"), "vae");
  EXPECT_EQ(TrainConfig::from_json(v.to_json(), "resolved").to_json(), v.to_json());
  // A VAE stage needs a VAE to fit; vae_loss belongs to it; stage names are checked.
  {
    const std::string e = test::error_message([] { parse("stage: vae\n"); });
    EXPECT_NE(e.find("model.vae"), std::string::npos) << e;
    EXPECT_NE(e.find("vae_model_path"), std::string::npos) << e;
  }
  {
    const std::string e = test::error_message([] { parse("stage: 1\nvae_loss: {kl_weight: 1}\n"); });
    EXPECT_NE(e.find("vae_loss"), std::string::npos) << e;
    EXPECT_NE(e.find("stage: vae"), std::string::npos) << e;
  }
  {
    const std::string e = test::error_message([] { parse("stage: vea\n"); });
    EXPECT_NE(e.find("'stage' must be 1, 2 or vae"), std::string::npos) << e;
  }
  {
    const std::string e = test::error_message([] { parse("stage: vae\nmodel: {vae: {latent_channels: 4}}\nvae_loss: {kl_wieght: 1}\n"); });
    EXPECT_NE(e.find("vae_loss.kl_wieght"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace hallo::trainer
