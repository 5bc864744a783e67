// The training step on tiny random networks: upstream's trainable sets, frozen
// parameters bitwise unchanged, non-finite steps skipped, stored posteriors equal
// to encoding on the fly, determinism, and checkpoints (round trip, torn, pruning),
// model folders and TensorBoard records.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "model/io/hf_config.h"
#include "tests/common/error_message.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_hallo.h"
#include "trainer/checkpoint.h"
#include "trainer/model_folder.h"
#include "trainer/model_setup.h"
#include "trainer/step.h"
#include "trainer/step_rng.h"
#include "trainer/tb_events.h"

namespace hallo::trainer {
namespace {

namespace fs = std::filesystem;

TrainConfig tiny(int stage) {
  TrainConfig c = test::tiny_hallo_config(stage);
  c.data.train_bs = 2;
  c.solver.learning_rate = 1e-3;
  return c;
}

DataShape tiny_shape() { return test::tiny_hallo_shape(); }

TrainBatch tiny_batch(int stage, int64_t B = 2) { return test::tiny_train_batch(stage, B); }

struct Rig {
  TrainConfig cfg;
  StepModels m;
  StepSettings settings;
  std::unique_ptr<TrainableSet> trainable;
  AdamW opt{{}};
  LocalReducer reducer;

  explicit Rig(int stage) : cfg(tiny(stage)) {
    ModelBundle b = build_models(cfg, tiny_shape(), /*need_vae=*/true);
    m.net = b.net;
    m.vae = b.vae;
    m.schedule = sched::NoiseSchedule(cfg.train_scheduler());
    settings = step_settings(cfg);
    apply_quirks(m.net, settings.quirks, cfg.data.n_motion_frames);
    trainable = std::make_unique<TrainableSet>(TrainableSet::select(m.net, stage, cfg.trainable_para));
    m.net->train();
    m.net->denoising_unet->set_checkpointing({cfg.solver.gradient_checkpointing, false});
  }
  MicroBatch micro(const TrainBatch& b, uint64_t seed = 1) const { return test::tiny_micro_batch(b, cfg.stage, seed); }
  StepReport step(const MicroBatch& mb) {
    Optimization o{trainable.get(), &opt, &reducer, 1.0};
    return optimization_step(m, settings, o, {mb}, 1e-3);
  }
};

TEST(TrainableSet, EqualsUpstreamsTrainableParams) {
  const fs::path dir = HALLO_GOLDEN_DIR;
  int checked = 0;
  for (const char* name : {"train_stage1_step", "train_stage2_step"}) {
    const fs::path cfg = dir / (std::string(name) + ".config.json");
    if (!fs::exists(cfg)) GTEST_SKIP() << "golden folder absent: " << cfg;
    const auto j = io::load_json_file(cfg);
    model::HalloNet net(model::HalloNetConfig::from_json(j.at("net"), cfg.string()));
    const int stage = j.at("_harness").at("stage").get<int>();
    const auto want = j.at("_harness").at("trainable_params").get<std::vector<std::string>>();
    const TrainableSet t = TrainableSet::select(net, stage, {"audio_modules", "motion_modules"});
    std::vector<std::string> ours;
    for (const auto& p : t.params()) ours.push_back(p.name);
    EXPECT_EQ(std::set<std::string>(ours.begin(), ours.end()), std::set<std::string>(want.begin(), want.end())) << name;
    EXPECT_EQ(ours.size(), want.size()) << name;
    for (const auto& p : t.frozen()) EXPECT_FALSE(p.param.requires_grad()) << p.name;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

TEST(TrainableSet, PatternsReplaceTheStageRuleAndMustEachMatch) {
  const fs::path cfg = fs::path(HALLO_GOLDEN_DIR) / "train_stage2_step.config.json";
  if (!fs::exists(cfg)) GTEST_SKIP() << "golden folder absent: " << cfg;
  const auto j = io::load_json_file(cfg);
  model::HalloNet net(model::HalloNetConfig::from_json(j.at("net"), cfg.string()));
  const std::vector<std::string> pats = {"^audioproj\\.", "^reference_unet\\..*\\.attn[12]\\.to_q\\."};
  const TrainableSet t = TrainableSet::select(net, 2, {"audio_modules"}, pats);
  int ref = 0, audio = 0;
  for (const auto& p : t.params()) {
    const bool r = p.name.rfind("reference_unet.", 0) == 0, a = p.name.rfind("audioproj.", 0) == 0;
    EXPECT_TRUE(r || a) << p.name;
    EXPECT_TRUE(p.param.requires_grad()) << p.name;
    if (r) {
      EXPECT_NE(p.name.find(".to_q."), std::string::npos) << p.name;
    }
    ref += r, audio += a;
  }
  EXPECT_GT(ref, 0);
  EXPECT_GT(audio, 0);
  for (const auto& p : t.frozen()) EXPECT_FALSE(p.param.requires_grad()) << p.name;
  try {
    TrainableSet::select(net, 2, {"audio_modules"}, {"^audioproj\\.", "no_such_module"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_module"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TrainableSet::select(net, 2, {}, {"(unclosed"}), Error);
}

TEST(TrainStep, FrozenParametersStayBitwiseUnchanged) {
  Rig r(2);
  std::vector<at::Tensor> before;
  for (const auto& p : r.trainable->frozen()) before.push_back(p.param.clone());
  std::map<std::string, at::Tensor> trained_before;
  for (const auto& p : r.trainable->params()) trained_before[p.name] = p.param.clone();
  const StepReport rep = r.step(r.micro(tiny_batch(2)));
  ASSERT_TRUE(rep.applied);
  EXPECT_GT(rep.grad_norm, 0);
  for (size_t i = 0; i < before.size(); ++i)
    EXPECT_TRUE(at::equal(before[i], r.trainable->frozen()[i].param)) << r.trainable->frozen()[i].name;
  int changed = 0;
  for (const auto& p : r.trainable->params()) changed += !at::equal(trained_before[p.name], p.param);
  EXPECT_GT(changed, 100);
  for (const auto& p : r.trainable->params()) EXPECT_FALSE(p.param.grad().defined()) << "gradient kept: " << p.name;
}

TEST(TrainStep, NonFiniteLossSkipsTheUpdate) {
  Rig r(1);
  TrainBatch b = tiny_batch(1);
  b.target_pixels[0][0][0][0][0] = std::nanf("");
  std::vector<at::Tensor> before;
  for (const auto& p : r.trainable->params()) before.push_back(p.param.clone());
  const StepReport rep = r.step(r.micro(b));
  EXPECT_FALSE(rep.applied);
  EXPECT_EQ(rep.nonfinite, "loss");
  EXPECT_FALSE(rep.nonfinite_param.empty());  // NaN reaches the gradients too and is named
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(at::equal(before[i], r.trainable->params()[i].param));
}

TEST(TrainStep, StoredPosteriorsGiveTheSameLatentsAsEncoding) {
  Rig r(2);
  const TrainBatch px = tiny_batch(2);
  const MicroBatch mb = r.micro(px);
  TrainBatch stored = px;
  {
    at::NoGradGuard ng;
    auto t = r.m.vae->encode(px.target_pixels.flatten(0, 1));
    auto f = r.m.vae->encode(px.ref_pixels.flatten(0, 1));
    stored.target_mean = t.mean.view({2, 3, 4, 8, 8});
    stored.target_std = t.std().view({2, 3, 4, 8, 8});
    stored.ref_mean = f.mean.view({2, 3, 4, 8, 8});
    stored.ref_std = f.std().view({2, 3, 4, 8, 8});
    const auto z = r.m.vae->encode(at::zeros({1, 3, 64, 64}));
    r.m.zero_frame_mean = z.mean[0];
    r.m.zero_frame_std = z.std()[0];
  }
  stored.target_pixels = stored.ref_pixels = at::Tensor();
  for (bool start : {false, true}) {
    StepDecisions d;
    d.start_frame = start;
    const Latents a = sample_latents(r.m, r.settings, px, mb.draws, d);
    const Latents b = sample_latents(r.m, r.settings, stored, mb.draws, d);
    EXPECT_TRUE(at::allclose(a.target, b.target, 1e-5, 1e-6)) << start;
    EXPECT_TRUE(at::allclose(a.ref, b.ref, 1e-5, 1e-6)) << start;
  }
  // Without the zero-frame posterior, stored latents cannot serve start_frame.
  r.m.zero_frame_mean = at::Tensor();
  StepDecisions d;
  d.start_frame = true;
  EXPECT_NE(test::error_message([&] { sample_latents(r.m, r.settings, stored, mb.draws, d); }).find("start_frame"),
            std::string::npos);
}

TEST(TrainStep, SameInputsSameBits) {
  std::vector<at::Tensor> runs;
  for (int i = 0; i < 2; ++i) {
    Rig r(2);
    const MicroBatch mb = r.micro(tiny_batch(2));
    r.step(mb);
    const StepReport rep = r.step(mb);
    std::vector<at::Tensor> flat;
    for (const auto& p : r.trainable->params()) flat.push_back(p.param.flatten());
    runs.push_back(at::cat(flat));
    runs.push_back(at::scalar_tensor(rep.loss, at::kDouble));
  }
  EXPECT_TRUE(at::equal(runs[0], runs[2]));
  EXPECT_TRUE(at::equal(runs[1], runs[3]));
}

TEST(Checkpoints, RoundTripTornAndPruned) {
  test::TempDir tmp;
  Rig r(2);
  r.step(r.micro(tiny_batch(2)));
  StepRng rng(3, 0);
  ModelFolderParts parts;
  parts.net_config = net_config_for(r.cfg, tiny_shape());
  parts.frozen_weights = tmp / "frozen.safetensors";
  write_frozen_weights(parts.frozen_weights, r.trainable->frozen());
  CheckpointStore store(tmp / "checkpoints", 2);
  auto save = [&](int64_t step) {
    CheckpointWrite w;
    w.parts = &parts;
    w.trainable = r.trainable.get();
    w.optimizer = &r.opt;
    w.rng = &rng;
    w.stage = 2;
    w.state.step = step;
    w.state.data = {{"pos", step}};
    return store.save(w);
  };
  save(1);
  save(2);
  const fs::path third = save(3);
  EXPECT_EQ(store.list().size(), 2u);  // keep 2
  EXPECT_EQ(store.latest(), third);

  // Round trip: optimizer moments, step counts, RNG, weights.
  AdamW restored({});
  restore_optimizer(third, r.trainable->params(), restored);
  ASSERT_EQ(restored.state().size(), r.opt.state().size());
  for (const auto& [k, s] : r.opt.state()) {
    EXPECT_TRUE(at::equal(s.exp_avg, restored.state().at(k).exp_avg)) << k;
    EXPECT_EQ(s.step, restored.state().at(k).step);
  }
  StepRng other(77, 0);
  restore_rng(third, other);
  EXPECT_TRUE(at::equal(other.state(), rng.state()));
  const LoadedCheckpoint ck = read_checkpoint(third);
  EXPECT_EQ(ck.state.step, 3);
  model::HalloNet net(model::HalloNetConfig::from_json(ck.model.net_config, "ckpt"));
  net->load(net_state_dict(ck.model), true);
  for (const auto& p : r.trainable->params())
    EXPECT_TRUE(at::equal(net->named_parameters()[p.name], p.param)) << p.name;

  // A torn checkpoint (a file cut short) is skipped for the previous one.
  const fs::path opt_file = third / "optimizer.safetensors";
  fs::resize_file(opt_file, fs::file_size(opt_file) / 2);
  EXPECT_EQ(store.latest(), store.list().front());
  EXPECT_NE(test::error_message([&] { verify_checkpoint(third); }).find("torn checkpoint"), std::string::npos);
  // A killed save's temp folder is removed when the store opens.
  fs::create_directories(tmp / "checkpoints" / "checkpoint-000009.tmp-123");
  CheckpointStore reopened(tmp / "checkpoints", 2);
  EXPECT_FALSE(fs::exists(tmp / "checkpoints" / "checkpoint-000009.tmp-123"));
}

TEST(TensorBoard, EventFileRecordsCarryValidChecksumsAndTags) {
  test::TempDir tmp;
  fs::path file;
  {
    EventWriter w(tmp.path());
    w.scalars(7, {{"loss", 0.25}, {"lr", 1e-5}});
    file = w.path();
  }
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  size_t pos = 0;
  int records = 0;
  std::string payloads;
  while (pos < bytes.size()) {
    uint64_t len;
    uint32_t len_crc, data_crc;
    ASSERT_LE(pos + 12, bytes.size());
    std::memcpy(&len, &bytes[pos], 8);
    std::memcpy(&len_crc, &bytes[pos + 8], 4);
    EXPECT_EQ(len_crc, masked_crc32c(&len, 8));
    ASSERT_LE(pos + 12 + len + 4, bytes.size());
    std::memcpy(&data_crc, &bytes[pos + 12 + len], 4);
    EXPECT_EQ(data_crc, masked_crc32c(&bytes[pos + 12], len));
    payloads += bytes.substr(pos + 12, len);
    pos += 12 + len + 4;
    ++records;
  }
  EXPECT_EQ(records, 2);  // file version + one summary
  EXPECT_NE(payloads.find("brain.Event:2"), std::string::npos);
  EXPECT_NE(payloads.find("loss"), std::string::npos);
  const float v = 0.25f;
  EXPECT_NE(payloads.find(std::string(reinterpret_cast<const char*>(&v), 4)), std::string::npos);
}

}  // namespace
}  // namespace hallo::trainer
