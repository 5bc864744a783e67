// The training loop (trainer/trainer.h) without the media libraries: an in-memory batch
// source feeds `Trainer::run` the tiny random Hallo. On the CPU a run resumed from its
// checkpoint equals the uninterrupted run bit for bit, and a loss-scaled float32 run
// equals an unscaled one; on a GPU (the device check) the CUDA run matches the CPU run
// and its checkpoint resumes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <fstream>

#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_hallo.h"
#include "trainer/trainer.h"

namespace hallo::trainer {
namespace {

namespace fs = std::filesystem;

// Batch k is tiny_train_batch seeded with k: the position is k.
class MemorySource : public BatchSource {
 public:
  TrainBatch next(int batch_size) override { return test::tiny_train_batch(2, batch_size, 1000 + next_++); }
  nlohmann::json position() const override { return {{"next", next_}}; }
  void seek(const nlohmann::json& p) override { next_ = p.at("next").get<int64_t>(); }
  DataShape shape() const override { return test::tiny_hallo_shape(); }
  size_t size() const override { return 16; }
  std::string describe() const override { return "in-memory tiny batches"; }

 private:
  int64_t next_ = 0;
};

TrainConfig loop_config(const fs::path& out) {
  TrainConfig c = test::tiny_hallo_config(2);
  c.data.train_bs = 1;
  c.solver.learning_rate = 1e-3;
  c.solver.max_train_steps = 4;
  c.checkpointing_steps = 2;
  c.val.loss_steps = 0;
  c.val.validation_steps = 0;
  c.output_dir = out.string();
  return c;
}

struct RunOut {
  std::map<std::string, at::Tensor> weights;
  std::vector<std::string> log;  // scalars.jsonl lines without the timings
};

RunOut run(TrainConfig c, const fs::path& dir, const std::string& resume = "", c10::Device device = c10::kCPU,
           int max_steps = 0) {
  if (max_steps > 0) c.solver.max_train_steps = max_steps;
  TrainOptions o;
  o.run_dir = dir;
  o.resume = resume;
  o.device = device;
  Trainer t(c, o, std::make_unique<MemorySource>(), nullptr);
  const TrainResult r = t.run();
  EXPECT_EQ(r.exit_code, 0);
  RunOut out;
  if (!fs::exists(dir / "final" / "net.trainable.safetensors")) return out;
  const io::StateDict sd = io::StateDict::open(dir / "final" / "net.trainable.safetensors");
  for (const auto& name : sd.keys()) out.weights[name] = sd.tensor(name).clone();
  std::ifstream f(dir / "scalars.jsonl");
  for (std::string line; std::getline(f, line);) {
    auto j = nlohmann::json::parse(line);
    if (!j.contains("loss")) continue;
    out.log.push_back(nlohmann::json{{"step", j["step"]}, {"loss", j["loss"]}, {"grad_norm", j["grad_norm"]}}.dump());
  }
  return out;
}

bool same_bits(const RunOut& a, const RunOut& b) {
  if (a.weights.size() != b.weights.size() || a.weights.empty()) return false;
  for (const auto& [k, v] : a.weights)
    if (!b.weights.count(k) || !at::equal(v, b.weights.at(k))) return false;
  return true;
}

TEST(TrainerLoop, ResumedRunAndLossScaledRunEqualTheStraightRun) {
  test::TempDir tmp;
  const TrainConfig c = loop_config(tmp.path());
  const RunOut straight = run(c, tmp / "straight");
  ASSERT_EQ(straight.log.size(), 4u);
  run(c, tmp / "resumed", "", c10::kCPU, 2);
  const RunOut resumed = run(c, tmp / "resumed", "auto");
  EXPECT_TRUE(same_bits(straight, resumed));
  EXPECT_EQ(straight.log, resumed.log);

  // Dynamic loss scaling (fp16's) in float32: exact, and its state is in the checkpoint.
  TrainConfig scaled = c;
  scaled.solver.loss_scale = "dynamic";
  scaled.solver.loss_scale_growth_interval = 1;
  const RunOut s = run(scaled, tmp / "scaled");
  EXPECT_TRUE(same_bits(straight, s));
  std::ifstream st(tmp / "scaled" / "checkpoints" / "checkpoint-000004" / "trainer_state.json");
  const auto state = nlohmann::json::parse(st);
  EXPECT_EQ(state.at("loss_scale").at("scale").get<double>(), 65536.0 * 16);  // grew after each of 4 clean steps
}

TEST(TrainerLoop, CudaRunMatchesTheCpuRunAndResumes) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no GPU in this build or machine (scripts/gpu/device-check.sh runs it)";
  at::globalContext().setAllowTF32CuDNN(false);  // float32 as on the CPU
  at::globalContext().setAllowTF32CuBLAS(false);
  test::TempDir tmp;
  const TrainConfig c = loop_config(tmp.path());
  const RunOut cpu = run(c, tmp / "cpu");
  const RunOut gpu = run(c, tmp / "gpu", "", c10::Device(c10::kCUDA, 0));
  ASSERT_EQ(gpu.weights.size(), cpu.weights.size());
  // Same loss curve; weights within 4 AdamW steps of lr (a near-zero gradient's sign may differ).
  ASSERT_EQ(gpu.log.size(), cpu.log.size());
  for (size_t i = 0; i < cpu.log.size(); ++i) {
    const auto a = nlohmann::json::parse(cpu.log[i]), b = nlohmann::json::parse(gpu.log[i]);
    EXPECT_NEAR(b["loss"].get<double>(), a["loss"].get<double>(), 1e-3 * a["loss"].get<double>()) << i;
  }
  for (const auto& [k, v] : cpu.weights)
    EXPECT_LT((gpu.weights.at(k) - v).abs().max().item<double>(), 4 * 2 * c.solver.learning_rate) << k;
  run(c, tmp / "gpu_resumed", "", c10::Device(c10::kCUDA, 0), 2);
  const RunOut resumed = run(c, tmp / "gpu_resumed", "auto", c10::Device(c10::kCUDA, 0));
  ASSERT_EQ(resumed.weights.size(), gpu.weights.size());
  for (const auto& [k, v] : gpu.weights) EXPECT_TRUE(at::allclose(resumed.weights.at(k), v, 1e-5, 1e-6)) << k;
  TrainConfig bf16 = c;
  bf16.solver.mixed_precision = "bf16";
  const RunOut b = run(bf16, tmp / "bf16", "", c10::Device(c10::kCUDA, 0));
  ASSERT_FALSE(b.weights.empty());
  for (const auto& [k, v] : b.weights) EXPECT_EQ(v.scalar_type(), at::kFloat) << k;  // float32 master weights
  // The frozen weights in bf16 (solver.frozen_dtype): trains, and the model folder keeps float32.
  bf16.solver.frozen_dtype = "bf16";
  EXPECT_FALSE(run(bf16, tmp / "frozen_bf16", "", c10::Device(c10::kCUDA, 0)).weights.empty());
  const io::StateDict frozen = io::StateDict::open(tmp / "frozen_bf16" / "final" / "net.frozen.safetensors");
  EXPECT_EQ(frozen.tensor(frozen.keys().front()).scalar_type(), at::kFloat);
  TrainConfig fp16 = c;
  fp16.solver.mixed_precision = "fp16";  // with dynamic loss scaling
  EXPECT_FALSE(run(fp16, tmp / "fp16", "", c10::Device(c10::kCUDA, 0)).weights.empty());
}

}  // namespace
}  // namespace hallo::trainer
