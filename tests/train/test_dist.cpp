// Data parallel on c10d (Gloo, CPU), with real processes: two ranks at batch b take
// the same steps as one process at batch 2b on the same samples and noise; the
// environment is read as torchrun sets it; a rank that dies makes the other fail
// quickly with a message instead of hanging.
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_hallo.h"
#include "trainer/dist/c10d_reducer.h"
#include "trainer/dist/comm.h"
#include "trainer/dist/dist_env.h"
#include "trainer/dist/launcher.h"
#include "trainer/model_setup.h"
#include "trainer/step.h"
#include "trainer/step_rng.h"
#include "trainer/zero.h"

namespace hallo::trainer::dist {
namespace {

namespace fs = std::filesystem;

TrainConfig tiny() { return test::tiny_hallo_config(2); }
DataShape tiny_shape() { return test::tiny_hallo_shape(); }

constexpr int64_t kB = 4, kF = 3, kS = 3;  // 64 px (test::tiny_train_batch)

// The whole batch and its draws, the same in every process.
MicroBatch full_batch() { return test::tiny_micro_batch(test::tiny_train_batch(2, kB, 99, kF), 2, 1); }

MicroBatch slice(const MicroBatch& m, int64_t lo, int64_t n) {
  MicroBatch s = m;
  auto rows = [&](const at::Tensor& t, int64_t per) { return t.narrow(0, lo * per, n * per).contiguous(); };
  TrainBatch& b = s.batch;
  b.target_pixels = rows(m.batch.target_pixels, 1);
  b.ref_pixels = rows(m.batch.ref_pixels, 1);
  b.face_region = rows(m.batch.face_region, 1);
  b.face_emb = rows(m.batch.face_emb, 1);
  for (int l = 0; l < kMaskLevels; ++l) {
    b.full_mask[l] = rows(m.batch.full_mask[l], 1);
    b.face_mask[l] = rows(m.batch.face_mask[l], 1);
    b.lip_mask[l] = rows(m.batch.lip_mask[l], 1);
  }
  b.audio = rows(m.batch.audio, 1);
  s.draws.latent_eps = rows(m.draws.latent_eps, kF);
  s.draws.noise_base = rows(m.draws.noise_base, 1);
  s.draws.noise_offset = rows(m.draws.noise_offset, 1);
  s.draws.timesteps = rows(m.draws.timesteps, 1);
  s.draws.ref_latent_eps = rows(m.draws.ref_latent_eps, kS);
  return s;
}

// `steps` optimisation steps on `mb` with solver.zero_stage `zero`; returns the trainable weights.
std::vector<NamedParam> train(const MicroBatch& mb, int steps, int zero,
                              const std::function<std::unique_ptr<GradientReducer>(const std::vector<NamedParam>&, bool)>& make,
                              GradientObserver* observer = nullptr) {
  TrainConfig cfg = tiny();
  ModelBundle b = build_models(cfg, tiny_shape(), /*need_vae=*/true);
  StepModels m;
  m.net = b.net;
  m.vae = b.vae;
  m.schedule = sched::NoiseSchedule(cfg.train_scheduler());
  StepSettings settings = step_settings(cfg);
  apply_quirks(m.net, settings.quirks, cfg.data.n_motion_frames);
  TrainableSet trainable = TrainableSet::select(m.net, 2, cfg.trainable_para);
  m.net->train();
  m.net->reference_unet->eval();
  AdamW opt({});
  LocalReducer local;
  std::unique_ptr<GradientReducer> dp = make ? make(trainable.params(), zero == 2) : nullptr;
  Optimization o{&trainable, &opt, dp ? dp.get() : &local, 1.0};
  std::vector<int> owners;
  std::vector<bool> owned;
  if (zero > 0) {
    owners = zero_owners(trainable.params(), dp->world_size());
    for (int r : owners) owned.push_back(r == dp->rank());
    o.owners = &owners;
    o.owned = &owned;
  }
  for (int i = 0; i < steps; ++i) optimization_step(m, settings, o, {mb}, 1e-3, observer);
  std::vector<NamedParam> out;
  for (const auto& p : trainable.params()) out.push_back({p.name, p.param.detach().clone()});
  return out;
}

void set_env(int rank, int world, int port) {
  setenv("RANK", std::to_string(rank).c_str(), 1);
  setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
  setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
}

TEST(DistEnv, ReadsTorchrunAndSlurmVariables) {
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS",
                        "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_RESTART_COUNT"})
    unsetenv(v);
  EXPECT_FALSE(dist_env_from_environment().distributed());
  set_env(1, 4, 1234);
  setenv("LOCAL_RANK", "0", 1);
  DistEnv e = dist_env_from_environment();
  EXPECT_EQ(e.rank, 1);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.master_port, 1234);
  EXPECT_EQ(e.source, "torchrun");
  EXPECT_FALSE(e.agent_store);
  setenv("TORCHELASTIC_USE_AGENT_STORE", "True", 1);  // torchrun's agent serves the store
  setenv("TORCHELASTIC_RESTART_COUNT", "2", 1);
  e = dist_env_from_environment();
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 2);
  setenv("TORCHELASTIC_RESTART_COUNT", "x", 1);
  EXPECT_THROW(dist_env_from_environment(), Error);
  unsetenv("TORCHELASTIC_USE_AGENT_STORE");
  unsetenv("TORCHELASTIC_RESTART_COUNT");
  setenv("RANK", "4", 1);
  EXPECT_THROW(dist_env_from_environment(), Error);  // outside [0, world)
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK"}) unsetenv(v);
  setenv("SLURM_PROCID", "0", 1);
  setenv("SLURM_NTASKS", "3", 1);  // inside an sbatch script, outside srun: one process
  EXPECT_FALSE(dist_env_from_environment().distributed());
  setenv("SLURM_PROCID", "2", 1);
  setenv("SLURM_STEP_NUM_TASKS", "3", 1);
  setenv("SLURM_LOCALID", "0", 1);
  e = dist_env_from_environment();
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 2);
  EXPECT_EQ(e.world_size, 3);
  unsetenv("MASTER_PORT");
  EXPECT_THROW(dist_env_from_environment(), Error);  // multi-process needs the rendezvous address
  for (const char* v : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID", "MASTER_ADDR"}) unsetenv(v);
}

TEST(DistBackend, ChoosesFromTheDeviceAndRefusesWhatThisBuildLacks) {
  EXPECT_EQ(choose_backend("auto", c10::Device(c10::kCPU)), "gloo");
  EXPECT_EQ(choose_backend("gloo", c10::Device(c10::kCPU)), "gloo");
  if (!nccl_available()) {
    try {
      choose_backend("nccl", c10::Device(c10::kCPU));
      ADD_FAILURE() << "nccl accepted by a build without it";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no ProcessGroupNCCL"), std::string::npos) << e.what();
    }
  } else {
    EXPECT_EQ(choose_backend("auto", c10::Device(c10::kCUDA, 0)), "nccl");
    EXPECT_THROW(choose_backend("nccl", c10::Device(c10::kCPU)), Error);
  }
  EXPECT_THROW(choose_backend("mpi", c10::Device(c10::kCPU)), Error);
}

// NCCL (CUDA builds with a GPU; the device check runs it): a one-rank group runs the
// collectives the trainer uses, with tensors on the GPU and (copied through) on the CPU.
TEST(DistBackend, NcclOneRankGroupRunsTheTrainersCollectives) {
  if (!nccl_available() || !torch::cuda::is_available()) GTEST_SKIP() << "no NCCL or no GPU in this build or machine";
  DistEnv env;
  env.master_port = free_port();
  const c10::Device gpu(c10::kCUDA, 0);
  auto comm = Comm::connect(env, std::chrono::seconds(60), "auto", gpu);
  EXPECT_EQ(comm->backend(), "nccl");
  std::vector<at::Tensor> t{at::arange(5, at::TensorOptions().dtype(at::kFloat).device(gpu))};
  comm->allreduce_sum(t, "test all-reduce");
  EXPECT_TRUE(at::equal(t[0].cpu(), at::arange(5, at::kFloat)));
  EXPECT_EQ(comm->sum(2.5, "test sum"), 2.5);  // a CPU scalar through the GPU
  EXPECT_EQ(comm->allgather_bytes("abc", "test gather").at(0), "abc");
  comm->barrier("test barrier");
  comm->reduce_sum_async(at::ones({3}, at::TensorOptions().device(gpu)), 0, "test reduce").wait();
  EXPECT_THROW(comm->allreduce_sum_async(at::ones({3}), "a CPU bucket").wait(), Error);
}

// One rank of the test below, in a fresh process (exec of this test binary: forking
// a process whose OpenMP runtime is already running can hang the child).
TEST(DataParallelChild, Rank) {
  const char* out = std::getenv("HALLO_DIST_TEST_OUT");
  if (!out) GTEST_SKIP() << "runs as a rank of DataParallel.TwoRanksAtBatchBEqualOneProcessAtBatch2B";
  const DistEnv env = dist_env_from_environment();
  auto comm = Comm::connect(env, std::chrono::seconds(60));
  const int zero = std::getenv("HALLO_DIST_TEST_ZERO") ? std::atoi(std::getenv("HALLO_DIST_TEST_ZERO")) : 0;
  // What this rank holds once the gradients are final (before clipping), last step.
  struct Held : GradientObserver {
    std::vector<int> owners;
    int rank = 0;
    int64_t bytes = 0, all = 0, buckets = 0, peak = 0;
    double early = 0;
    bool only_owned = true;
    const C10dReducer* reducer = nullptr;  // alive during the steps only
    void on_gradients(const TrainableSet& t) override {
      buckets = static_cast<int64_t>(reducer->buckets());
      peak = reducer->peak_bucket_bytes();
      early = reducer->launched_during_backward();
      bytes = all = 0;
      for (size_t i = 0; i < t.params().size(); ++i) {
        const at::Tensor& p = t.params()[i].param;
        all += p.numel() * 4;
        if (!p.grad().defined()) continue;
        bytes += p.numel() * 4;
        if (!owners.empty() && owners[i] != rank) only_owned = false;
      }
    }
  } held;
  held.rank = env.rank;
  const auto w = train(
      slice(full_batch(), env.rank * kB / 2, kB / 2), 3, zero,
      [&](const std::vector<NamedParam>& p, bool shard) {
        // Small buckets: several collectives launched while backward runs.
        auto r = std::make_unique<C10dReducer>(comm, p, int64_t{64} << 10, shard);
        held.reducer = r.get();
        if (shard) held.owners = zero_owners(p, env.world_size);
        return r;
      },
      &held);
  std::vector<io::TensorRecord> recs;
  for (const auto& p : w) recs.push_back(io::from_tensor(p.name, p.param));
  const std::string prefix = zero == 0 ? "rank" : fmt::format("zero{}_rank", zero);
  io::write_safetensors(fs::path(out) / (prefix + std::to_string(env.rank) + ".safetensors"), recs,
                        {{"buckets", std::to_string(held.buckets)},
                         {"held", std::to_string(held.bytes)},
                         {"all", std::to_string(held.all)},
                         {"only_owned", held.only_owned ? "1" : "0"},
                         {"peak_bucket_bytes", std::to_string(held.peak)},
                         {"launched_during_backward", std::to_string(held.early)}});
}

// One rank of DataParallel.LateAndUnusedGradients: three parameters, each its own
// bucket (4-byte cap), plain losses. Step 1 uses only w0, so the reducer learns that
// w1 and w2 get no gradient: in step 2 their buckets leave right after w0's, and w2's
// gradient, from a second backward after w0's, is late; w1 gets none anywhere.
TEST(DataParallelChild, LateRank) {
  const char* out = std::getenv("HALLO_DIST_TEST_LATE_OUT");
  if (!out) GTEST_SKIP() << "runs as a rank of DataParallel.LateAndUnusedGradients";
  const DistEnv env = dist_env_from_environment();
  auto comm = Comm::connect(env, std::chrono::seconds(60));
  const bool shard = std::getenv("HALLO_DIST_TEST_ZERO") != nullptr;
  std::vector<NamedParam> ps;
  for (int64_t n : {3, 5, 2}) ps.push_back({"w" + std::to_string(ps.size()), at::ones({n}).requires_grad_()});
  C10dReducer r(comm, ps, 4, shard);
  const double k = env.rank + 1;
  const at::Tensor x = at::arange(3, at::kFloat) * k;
  r.begin_backward(true);
  (ps[0].param * x).sum().backward();
  r.finish();
  for (auto& p : ps) p.param.mutable_grad() = at::Tensor();
  r.begin_backward(true);
  ((ps[0].param * x).sum() * 2).backward();
  (ps[2].param * k).sum().backward();
  r.finish();
  std::vector<io::TensorRecord> recs;
  auto keep = [&](const char* step) {
    for (auto& p : ps) {
      if (p.param.grad().defined()) recs.push_back(io::from_tensor(step + p.name, p.param.grad().clone()));
      p.param.mutable_grad() = at::Tensor();
    }
  };
  keep("s2.");
  // Step 3, two micro-steps: w1 only in the first (no communication), w0 in the second.
  r.begin_backward(false);
  (ps[1].param * k).sum().backward();
  r.begin_backward(true);
  (ps[0].param * x).sum().backward();
  r.finish();
  keep("s3.");
  std::string owners;
  for (int o : zero_owners(ps, env.world_size)) owners += std::to_string(o);
  io::write_safetensors(fs::path(out) / ((shard ? "zero_rank" : "rank") + std::to_string(env.rank) + ".safetensors"), recs,
                        {{"late_steps", std::to_string(r.late_steps())}, {"owners", owners}});
}

// Runs DataParallelChild.Rank (or `child`) on 2 ranks; false when a rank failed.
bool run_two_ranks(const fs::path& out, int zero, const char* child = "Rank") {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < 2; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      set_env(rank, 2, port);
      setenv(std::string(child) == "Rank" ? "HALLO_DIST_TEST_OUT" : "HALLO_DIST_TEST_LATE_OUT", out.c_str(), 1);
      setenv("HALLO_THREADS", "1", 1);
      if (zero > 0) setenv("HALLO_DIST_TEST_ZERO", std::to_string(zero).c_str(), 1);
      const std::string filter = std::string("--gtest_filter=DataParallelChild.") + child;
      execl("/proc/self/exe", "hallo_dist_tests", filter.c_str(), nullptr);
      _exit(127);
    }
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t p : pids) {
    int status = 0;
    waitpid(p, &status, 0);
    ok &= WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

TEST(DataParallel, TwoRanksAtBatchBEqualOneProcessAtBatch2B) {
  test::TempDir dir("hallo_dist");
  ASSERT_TRUE(run_two_ranks(dir.path(), 0)) << "a rank failed";
  const int steps = 3;
  const auto single = train(full_batch(), steps, 0, nullptr);
  const io::StateDict r0 = io::StateDict::open(dir.path() / "rank0.safetensors");
  const io::StateDict r1 = io::StateDict::open(dir.path() / "rank1.safetensors");
  EXPECT_GT(std::stoi(r0.weights().metadata.at("buckets")), 3);
  // What training moved (w - w0) must agree: Adam normalises each gradient, so elements
  // whose gradient is ~1e-8 move by noise-level amounts either way; the update as a
  // whole agrees to float tolerance.
  const TrainConfig cfg = tiny();
  ModelBundle fresh = build_models(cfg, tiny_shape(), true);
  const TrainableSet t0 = TrainableSet::select(fresh.net, 2, cfg.trainable_para);
  double diff2 = 0, upd2 = 0, worst = 0;
  int changed = 0;
  for (size_t i = 0; i < single.size(); ++i) {
    const at::Tensor a = r0.tensor(single[i].name), b = r1.tensor(single[i].name);
    EXPECT_TRUE(at::equal(a, b)) << "ranks disagree on " << single[i].name;  // identical updates everywhere
    const at::Tensor w0 = t0.params()[i].param.detach();
    changed += !at::equal(single[i].param, w0);
    diff2 += (a - single[i].param).pow(2).sum().item<double>();
    upd2 += (single[i].param - w0).pow(2).sum().item<double>();
    worst = std::max(worst, (a - single[i].param).abs().max().item<double>());
  }
  std::printf("relative update difference %.3g, largest weight difference %.3g, %d of %zu tensors moved\n",
              std::sqrt(diff2 / upd2), worst, changed, single.size());
  EXPECT_GT(changed, static_cast<int>(single.size()) / 2);
  EXPECT_LT(std::sqrt(diff2 / upd2), 1e-3) << "2 ranks vs 1 process at the doubled batch: relative update difference";
  // One element with a noise-level gradient can differ by a fraction of Adam's step
  // (lr per step): 1.29e-4 on an AVX2 EPYC, below 1e-4 on an AVX-512 one (BLAS kernels).
  EXPECT_LT(worst, 0.1 * 1e-3 * steps) << "largest weight difference (lr 1e-3, 3 steps)";
}

TEST(DataParallel, ZeroShardedOptimizerEqualsUnsharded) {
  test::TempDir dir("hallo_zero");
  ASSERT_TRUE(run_two_ranks(dir.path(), 0));
  ASSERT_TRUE(run_two_ranks(dir.path(), 1));
  const io::StateDict a = io::StateDict::open(dir.path() / "rank0.safetensors");
  for (const char* f : {"zero1_rank0.safetensors", "zero1_rank1.safetensors"}) {
    const io::StateDict z = io::StateDict::open(dir.path() / f);
    for (const auto& name : a.keys())  // each owner updates, then broadcasts: the same bits
      EXPECT_TRUE(at::equal(a.tensor(name), z.tensor(name))) << f << " " << name;
  }
}

// ZeRO-2: each gradient bucket is reduced to its owner only; the per-parameter norms
// are summed over ranks, so clipping and the update are the unsharded bits, while a
// rank holds about half the gradients and frees the other half as soon as sent.
TEST(DataParallel, ZeroShardedGradientsEqualUnshardedAndHoldHalf) {
  test::TempDir dir("hallo_zero2");
  ASSERT_TRUE(run_two_ranks(dir.path(), 0));
  ASSERT_TRUE(run_two_ranks(dir.path(), 2));
  const io::StateDict a = io::StateDict::open(dir.path() / "rank0.safetensors");
  auto meta = [](const io::StateDict& d, const char* k) { return std::stoll(d.weights().metadata.at(k)); };
  const int64_t unsharded_held = meta(a, "held"), unsharded_peak = meta(a, "peak_bucket_bytes");
  EXPECT_GT(unsharded_held, meta(a, "all") / 2);  // most parameters get a gradient
  int64_t held_sum = 0;
  for (const char* f : {"zero2_rank0.safetensors", "zero2_rank1.safetensors"}) {
    const io::StateDict z = io::StateDict::open(dir.path() / f);
    for (const auto& name : a.keys())
      EXPECT_TRUE(at::equal(a.tensor(name), z.tensor(name))) << f << " " << name;
    EXPECT_EQ(meta(z, "only_owned"), 1) << f << " holds a gradient of a parameter another rank owns";
    const int64_t held = meta(z, "held"), peak = meta(z, "peak_bucket_bytes");
    std::printf("%s: %lld buckets (unsharded %lld), holds %.1f%% of the unsharded gradients, bucket peak %.1f%% of unsharded\n", f, meta(z, "buckets"), meta(a, "buckets"),
                100.0 * held / unsharded_held, 100.0 * peak / unsharded_peak);
    EXPECT_GT(held, unsharded_held / 5) << f;  // both ranks own a real share
    EXPECT_LT(held, unsharded_held * 4 / 5) << f;
    // Own half + at most 2 buckets of others' segments in flight (+ one parameter
    // larger than a bucket).
    EXPECT_LT(peak, unsharded_peak * 7 / 10) << f << ": other ranks' segments are freed once reduced";
    held_sum += held;
  }
  EXPECT_EQ(held_sum, unsharded_held);  // every gradient has exactly one holder
  // After the first step the buckets follow the order gradients arrive in: over 3
  // steps, most leave during backward (without learning it was none of them: the
  // audio projection, first in reverse parameter order, gets its gradient last).
  EXPECT_GT(std::stod(a.weights().metadata.at("launched_during_backward")), 0.5);
}

TEST(DataParallel, LateAndUnusedGradients) {
  test::TempDir dir("hallo_late");
  for (int zero : {0, 2}) {
    ASSERT_TRUE(run_two_ranks(dir.path(), zero, "LateRank")) << "zero " << zero;
    for (int rank = 0; rank < 2; ++rank) {
      const io::StateDict d =
          io::StateDict::open(dir.path() / ((zero ? "zero_rank" : "rank") + std::to_string(rank) + ".safetensors"));
      EXPECT_EQ(d.weights().metadata.at("late_steps"), "1");  // w2, in step 2
      const std::string owners = d.weights().metadata.at("owners");
      auto holds = [&](int i) { return zero == 0 || owners.at(static_cast<size_t>(i)) - '0' == rank; };
      // Means over ranks (k = 1, 2). Step 2: w0 2 * arange(3) * 1.5, w1 none anywhere, w2 1.5.
      EXPECT_EQ(d.contains("s2.w0"), holds(0)) << zero << " " << rank;
      if (d.contains("s2.w0")) {
        EXPECT_TRUE(at::allclose(d.tensor("s2.w0"), at::arange(3, at::kFloat) * 3.0));
      }
      EXPECT_FALSE(d.contains("s2.w1"));
      EXPECT_EQ(d.contains("s2.w2"), holds(2)) << zero << " " << rank;
      if (d.contains("s2.w2")) {
        EXPECT_TRUE(at::allclose(d.tensor("s2.w2"), at::full({2}, 1.5)));
      }
      // Step 3 (accumulation): w0 arange(3) * 1.5, w1 1.5 from the first micro-step, w2 none.
      EXPECT_EQ(d.contains("s3.w0"), holds(0)) << zero << " " << rank;
      if (d.contains("s3.w0")) {
        EXPECT_TRUE(at::allclose(d.tensor("s3.w0"), at::arange(3, at::kFloat) * 1.5));
      }
      EXPECT_EQ(d.contains("s3.w1"), holds(1)) << zero << " " << rank;
      if (d.contains("s3.w1")) {
        EXPECT_TRUE(at::allclose(d.tensor("s3.w1"), at::full({5}, 1.5)));
      }
      EXPECT_FALSE(d.contains("s3.w2"));
    }
  }
}

TEST(Zero, OwnersBalanceValuesAcrossRanks) {
  std::vector<NamedParam> ps;
  for (int64_t n : {100, 10, 10, 50, 40, 5, 5}) ps.push_back({"p" + std::to_string(n), at::zeros({n})});
  const auto o = zero_owners(ps, 2);
  EXPECT_EQ(o, (std::vector<int>{0, 1, 1, 1, 1, 0, 0}));  // loads 110 / 110
  EXPECT_EQ(zero_owners(ps, 1), std::vector<int>(ps.size(), 0));
}

TEST(DataParallel, ADeadRankMakesTheOtherFailFastNamingTheCollective) {
  const int port = free_port();
  const pid_t dying = fork();
  if (dying == 0) {
    set_env(1, 2, port);
    try {
      auto comm = Comm::connect(dist_env_from_environment(), std::chrono::seconds(20));
      // Both ranks fully connected first (leaving right after connect can race rank 0's
      // own connection setup, which then fails in connect instead of the all-reduce).
      comm->barrier("both ranks joined");
      _exit(0);  // leaves without ever joining the all-reduce
    } catch (...) {
      _exit(3);
    }
  }
  set_env(0, 2, port);
  std::string message;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    auto comm = Comm::connect(dist_env_from_environment(), std::chrono::seconds(20));
    comm->barrier("both ranks joined");
    usleep(300000);
    std::vector<at::Tensor> t{at::ones({1000})};
    comm->allreduce_sum(t, "all-reduce of gradient bucket 0");
  } catch (const Error& e) {
    message = e.what();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int status = 0;
  waitpid(dying, &status, 0);
  for (const char* v : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"}) unsetenv(v);
  EXPECT_NE(message.find("rank 0"), std::string::npos) << message;
  EXPECT_NE(message.find("all-reduce of gradient bucket 0"), std::string::npos) << message;
  EXPECT_LT(secs, 25) << "took " << secs << " s";
}

}  // namespace
}  // namespace hallo::trainer::dist
