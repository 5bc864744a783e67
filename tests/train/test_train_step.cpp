// The training step on tiny random networks: upstream's trainable sets, frozen
// parameters bitwise unchanged, non-finite steps skipped, stored posteriors equal
// to encoding on the fly, determinism, and checkpoints (round trip, torn, pruning),
// model folders and TensorBoard records.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <fstream>
#include <set>

#include "model/io/hf_config.h"
#include "model/nn/autocast.h"
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
  StepReport step(const MicroBatch& mb, LossScaler* scaler = nullptr, GradientObserver* observer = nullptr) {
    Optimization o{trainable.get(), &opt, &reducer, 1.0};
    o.scaler = scaler;
    return optimization_step(m, settings, o, {mb}, 1e-3, observer);
  }
  at::Tensor flat_params() const {
    std::vector<at::Tensor> flat;
    for (const auto& p : trainable->params()) flat.push_back(p.param.detach().flatten());
    return at::cat(flat);
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

TEST(LossScaler, BacksOffOnOverflowGrowsAfterTheIntervalAndRoundTrips) {
  LossScaler s(LossScaleConfig{true, 1024.0, 2.0, 0.5, 3});
  EXPECT_EQ(s.scale(), 1024.0);
  s.update(true);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.clean_steps(), 2);
  s.update(false);  // the third clean step in a row
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.clean_steps(), 0);
  s.update(false);
  s.update(true);  // an overflow resets the clean count
  s.update(false);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  LossScaler t(LossScaleConfig{true, 65536.0, 2.0, 0.5, 3});
  t.restore(s.state(), "state.json");
  EXPECT_EQ(t.scale(), 512.0);
  EXPECT_EQ(t.clean_steps(), 2);
  EXPECT_EQ(LossScaler().scale(), 1.0);  // disabled
  EXPECT_TRUE(LossScaler().state().empty());
  EXPECT_NE(test::error_message([] { LossScaler(LossScaleConfig{true, 1000.0}); }).find("power of two"),
            std::string::npos);
  EXPECT_NE(test::error_message([&] { t.restore({{"scale", 3.0}}, "state.json"); }).find("state.json"),
            std::string::npos);
}

// Scaling by a power of two is exact in float32: with no overflow a scaled run gives the
// unscaled run's bits. A scale that overflows skips the step, lowers the scale and
// leaves the weights alone, and the next step at the lower scale is that exact step.
TEST(TrainStep, LossScalingIsExactAndOverflowSkipsAndBacksOff) {
  Rig plain(2), scaled(2), huge(2);
  const MicroBatch a = plain.micro(tiny_batch(2), 1), b = plain.micro(tiny_batch(2), 2);
  LossScaler s(LossScaleConfig{true, 65536.0, 2.0, 0.5, 1});
  for (const auto* mb : {&a, &b}) {
    const StepReport rp = plain.step(*mb);
    const StepReport rs = scaled.step(*mb, &s);
    ASSERT_TRUE(rp.applied && rs.applied);
    EXPECT_EQ(rp.grad_norm, rs.grad_norm);
    EXPECT_EQ(rp.loss, rs.loss);
  }
  EXPECT_EQ(s.scale(), 262144.0);  // grew after each clean step (interval 1)
  EXPECT_TRUE(at::equal(plain.flat_params(), scaled.flat_params()));

  // 2^140 x the loss is beyond float32 (max ~2^128): backward overflows until the scale is
  // low enough (the grads themselves still fit at 2^127 here).
  LossScaler h(LossScaleConfig{true, std::ldexp(1.0, 140), 2.0, 0.5, 1000});
  Rig ref(2);
  const at::Tensor before = huge.flat_params();
  int skipped = 0;
  StepReport r;
  for (int i = 0; i < 200; ++i) {
    r = huge.step(a, &h);
    if (r.applied) break;
    EXPECT_TRUE(r.overflow);
    EXPECT_EQ(r.nonfinite, "gradients");
    EXPECT_TRUE(at::equal(before, huge.flat_params()));
    ++skipped;
  }
  ASSERT_TRUE(r.applied);
  EXPECT_GE(skipped, 12);
  EXPECT_EQ(r.loss_scale, std::ldexp(1.0, 140 - skipped));
  ref.step(a);
  EXPECT_TRUE(at::equal(ref.flat_params(), huge.flat_params()));
}

// The CUDA trainer: the same step on a GPU (networks, batch and draws moved there; the
// draws come from the CPU generator, so the numbers are the same) gives the CPU's loss
// and weights to float tolerance in fp32, and runs under bf16 autocast and fp16 with
// loss scaling with float32 master weights. Needs a GPU (the device check runs it).
// The reduced gradients, flattened onto the CPU (before clipping).
struct GradCapture : GradientObserver {
  at::Tensor flat;
  void on_gradients(const TrainableSet& t) override {
    std::vector<at::Tensor> g;
    for (const auto& p : t.params())
      g.push_back(p.param.grad().defined() ? p.param.grad().flatten().cpu() : at::zeros({p.param.numel()}));
    flat = at::cat(g);
  }
};

TEST(TrainStep, CudaStepMatchesTheCpuStep) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU in this build or machine (scripts/gpu/device-check.sh runs it)";
  // Full float32 on the GPU too (TF32 convolutions would differ from the CPU by ~1e-3).
  at::globalContext().setAllowTF32CuDNN(false);
  at::globalContext().setAllowTF32CuBLAS(false);
  const c10::Device gpu(c10::kCUDA, 0);
  const TrainBatch batch = tiny_batch(2);
  Rig cpu(2);
  const MicroBatch mb = cpu.micro(batch, 3);
  GradCapture cpu_grads;
  const StepReport rc = cpu.step(mb, nullptr, &cpu_grads);  // the loss is the forward's, at the initial weights
  for (const char* precision : {"no", "bf16", "fp16"}) {
    Rig g(2);
    g.m.net->to(gpu);
    g.m.vae->to(gpu);
    g.settings.autocast = nn::mixed_precision_dtype(precision);
    LossScaler scaler(LossScaleConfig{std::string(precision) == "fp16"});
    MicroBatch gm{mb.batch.to(gpu), mb.draws.to(gpu), mb.decisions};
    StepReport rg;
    GradCapture gpu_grads;
    for (int i = 0; i < 8; ++i) {  // fp16: the first steps may overflow the initial scale
      rg = g.step(gm, &scaler, &gpu_grads);
      if (rg.applied) break;
    }
    ASSERT_TRUE(rg.applied) << precision;
    for (const auto& p : g.trainable->params()) EXPECT_EQ(p.param.scalar_type(), at::kFloat) << p.name;
    if (std::string(precision) == "no") {
      EXPECT_NEAR(rg.loss, rc.loss, 1e-4 * std::abs(rc.loss) + 1e-6);
      EXPECT_NEAR(rg.grad_norm, rc.grad_norm, 1e-3 * rc.grad_norm);
      // Gradients (AdamW's first step moves every weight by ~lr whatever the gradient's size,
      // so near-zero gradients of either sign make the weights a poor comparison).
      const double scale = cpu_grads.flat.abs().max().item<double>();
      EXPECT_LT((gpu_grads.flat - cpu_grads.flat).abs().max().item<double>(), 1e-3 * scale);
      EXPECT_LT((g.flat_params().cpu() - cpu.flat_params()).abs().max().item<double>(), 2.5e-3);  // <= 2 lr
    } else {
      EXPECT_TRUE(std::isfinite(rg.loss) && std::isfinite(rg.grad_norm)) << precision;
      EXPECT_NEAR(rg.loss, rc.loss, 0.05 * std::abs(rc.loss) + 1e-3) << precision;
    }
  }
}

// solver.frozen_dtype: a VAE stored in bf16 encodes its (float32) pixels in bf16 and
// hands float32 posteriors to the step, close to the float32 VAE's; the frozen net
// weights are cast, the trainable ones are not.
TEST(TrainStep, FrozenWeightsInBf16KeepTrainableFloat32AndFloat32Posteriors) {
  Rig r(2);
  const MicroBatch mb = r.micro(tiny_batch(2));
  const Latents ref = sample_latents(r.m, r.settings, mb.batch, mb.draws, {});
  const int64_t saved = store_frozen_weights(r.m.net, r.m.vae, at::kBFloat16).total();
  int64_t frozen_floats = 0;
  std::set<const void*> params;
  for (const auto& p : r.m.net->parameters()) params.insert(p.unsafeGetTensorImpl());
  int buffers = 0;
  for (const auto& p : r.trainable->frozen()) {
    if (!params.count(p.param.unsafeGetTensorImpl())) {  // a buffer (positional tables): kept float32
      EXPECT_EQ(p.param.scalar_type(), at::kFloat) << p.name;
      ++buffers;
      continue;
    }
    EXPECT_EQ(p.param.scalar_type(), at::kBFloat16) << p.name;
    frozen_floats += p.param.numel();
  }
  EXPECT_GT(buffers, 0);
  for (const auto& p : r.trainable->params()) EXPECT_EQ(p.param.scalar_type(), at::kFloat) << p.name;
  int64_t vae_values = 0;
  for (const auto& p : r.m.vae->parameters()) {
    EXPECT_EQ(p.scalar_type(), at::kBFloat16);
    vae_values += p.numel();
  }
  EXPECT_EQ(saved, 2 * (frozen_floats + vae_values));
  const Latents low = sample_latents(r.m, r.settings, mb.batch, mb.draws, {});
  EXPECT_EQ(low.target.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(low.target, ref.target, 0.05, 0.05)) << (low.target - ref.target).abs().max().item<float>();
  EXPECT_FALSE(at::equal(low.target, ref.target));  // really encoded in bf16
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
