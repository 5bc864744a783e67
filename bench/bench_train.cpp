// Training-step benchmarks (random weights; the step of `hallo train`, trainer/step.h).
//
//  bench_train --tiny                 tiny stage-2 step (the goldens' widths, 128 px, 2 x (4+2)
//                                     frames): seconds per step and samples/s
//  bench_train --anchor               the anchor configuration: SD1.5 widths (reference
//                                     UNet 860 M, denoising UNet 1.53 G, 702.5 M trainable),
//                                     full-size VAE, audio 12 x 768, batch 1, 256^2, 8 + 2 motion
//                                     frames; variants: gradient checkpointing on/off x latents
//                                     encoded by the VAE on the fly / stored in the shards.
//  --device cuda --mixed-precision bf16 the same on a GPU (the CUDA build), reporting the caching
//                                     allocator's peak; issue 12's 24 GB check is
//                                     --anchor --size 512 --frames 14 --motion 2 --variants ckpt-stored.
// Every variant runs in its own process (its own peak RSS); the first step is a warm-up;
// the median of the timed steps is reported with the ratio to upstream's anchor step
// (172 s median, 18.8 GiB peak, measured with upstream's code on this machine class) and
// to the first variant of this run.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "bench/isolated_run.h"
#include "core/cpu_allocator.h"
#include "core/device.h"
#include "core/runtime.h"
#include "model/nn/autocast.h"
#include "trainer/activation_estimate.h"
#include "trainer/model_setup.h"
#include "trainer/step.h"
#include "trainer/step_rng.h"

using namespace hallo;
using namespace hallo::trainer;

namespace {

constexpr double kAnchorSeconds = 172.0, kAnchorGiB = 18.8;
std::string g_profile;  // --profile: chrome trace of the last timed step
std::string g_shapes;   // --profile-shapes: time per (op, input shapes) of the last timed step, as text
std::string g_rss;      // --rss-trace: resident memory every 0.2 s of the last timed step
std::string g_device = "cpu";     // --device (resolved in each case's own process: no CUDA before fork)
std::string g_precision = "no";   // --mixed-precision
std::string g_frozen = "fp32";    // --frozen-dtype

// Samples this process's resident set while alive; writes "seconds GiB" lines.
class RssTrace {
 public:
  explicit RssTrace(const std::string& path) : out_(path), t0_(std::chrono::steady_clock::now()) {
    th_ = std::thread([this] {
      while (!stop_) {
        std::ifstream statm("/proc/self/statm");
        long pages = 0, rss = 0;
        statm >> pages >> rss;
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
        out_ << fmt::format("{:.1f} {:.3f}\n", t, rss * 4096.0 / (1 << 30));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  }
  ~RssTrace() {
    stop_ = true;
    th_.join();
  }

 private:
  std::ofstream out_;
  std::chrono::steady_clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::thread th_;
};

// Aggregates the legacy profiler's push/pop events per (name, shapes): self time is not
// separated, so nested ops count in their parents too; mm / bmm / conv are leaves.
void write_shape_profile(const torch::autograd::profiler::thread_event_lists& lists, const std::string& path) {
  std::map<std::string, std::pair<int, double>> agg;
  for (const auto& list : lists) {
    std::map<uint64_t, const torch::autograd::profiler::LegacyEvent*> open;
    for (const auto& e : list) {
      if (e.kindStr() == "push") open[e.handle()] = &e;
      else if (e.kindStr() == "pop") {
        auto it = open.find(e.handle());
        if (it == open.end()) continue;
        std::string key = it->second->name();
        for (const auto& sh : it->second->shapes()) key += " " + c10::str(c10::IntArrayRef(sh));
        auto& a = agg[key];
        a.first += 1;
        a.second += it->second->cpuElapsedUs(e) / 1e6;
        open.erase(it);
      }
    }
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [k, v] : agg) rows.emplace_back(v.second, fmt::format("{:9.3f} s {:6d}  {}", v.second, v.first, k));
  std::sort(rows.rbegin(), rows.rend());
  std::ofstream out(path);
  for (const auto& r : rows) out << r.second << "\n";
}

struct Case {
  std::string name;
  bool tiny = false;
  bool checkpointing = true;
  bool stored_latents = false;
  int size = 256, frames = 8, motion = 2, batch = 1, steps = 2;
  std::vector<std::string> keep;  // blocks that keep activations under checkpointing
};

TrainConfig config_for(const Case& c) {
  TrainConfig cfg = TrainConfig::stage2();
  cfg.data.train_bs = c.batch;
  cfg.data.train_width = cfg.data.train_height = c.size;
  cfg.data.n_sample_frames = c.frames;
  cfg.data.n_motion_frames = c.motion;
  cfg.solver.gradient_checkpointing = c.checkpointing;
  cfg.solver.checkpoint_keep_blocks = c.keep;
  cfg.model.init_seed = 1;
  cfg.solver.mixed_precision = g_precision;
  cfg.solver.frozen_dtype = g_frozen;
  if (c.tiny) {
    cfg.model.unet = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}, {"cross_attention_dim", 40}};
    cfg.model.vae = {{"block_out_channels", {32, 32, 64, 64}}, {"norm_num_groups", 8}};
    cfg.model.audioproj = {{"intermediate_dim", 64}, {"context_tokens", 8}};
    cfg.unet_additional_kwargs["audio_attention_dim"] = 32;
  } else {
    cfg.model.vae = {{"block_out_channels", {128, 256, 512, 512}}, {"norm_num_groups", 32}};  // sd-vae-ft-mse
  }
  return cfg;
}

TrainBatch batch_for(const Case& c, const TrainConfig& cfg, const DataShape& shape) {
  at::manual_seed(3);
  TrainBatch b = random_step_batch(cfg, shape, c.batch, c.size, c.size);
  if (!c.stored_latents) {  // pixels, VAE-encoded in the step (as upstream)
    b.target_pixels = at::rand({c.batch, c.frames, 3, c.size, c.size}) * 2 - 1;
    b.ref_pixels = at::rand({c.batch, 1 + c.motion, 3, c.size, c.size}) * 2 - 1;
    b.target_mean = b.target_std = b.ref_mean = b.ref_std = at::Tensor();
  }
  return b;
}

// One case, in this process: build, one warm-up step, `steps` timed steps -> median seconds.
double run_case(const Case& c, std::vector<double>* times) {
  const TrainConfig cfg = config_for(c);
  const c10::Device dev = resolve_device(g_device);
  DataShape shape;
  shape.audio_layers = c.tiny ? 4 : 12;
  shape.audio_dim = c.tiny ? 32 : 768;
  ModelBundle bundle = build_models(cfg, shape, /*need_vae=*/!c.stored_latents);
  StepModels m;
  m.net = bundle.net;
  if (!c.stored_latents) m.vae = bundle.vae;
  if (m.vae) m.vae->release_decoder();  // the step only encodes (as hallo train without validation)
  m.net->to(dev);
  if (m.vae) m.vae->to(dev);
  m.schedule = sched::NoiseSchedule(cfg.train_scheduler());
  const StepSettings settings = step_settings(cfg);
  apply_quirks(m.net, settings.quirks, c.motion);
  TrainableSet trainable = TrainableSet::select(m.net, 2, cfg.trainable_para);
  m.net->train();
  m.net->reference_unet->eval();
  m.net->denoising_unet->set_checkpointing({cfg.solver.gradient_checkpointing, false, cfg.solver.checkpoint_keep_blocks});
  if (g_frozen != "fp32")
    std::fprintf(stderr, "  %s: frozen weights in %s, %.2f GiB saved\n", c.name.c_str(), g_frozen.c_str(),
                 store_frozen_weights(m.net, m.vae, nn::mixed_precision_dtype(g_frozen.c_str())).total() /
                     double(1 << 30));
  bundle.vae = nullptr;  // m.vae holds it when the step encodes; stored latents need none
  bundle.net = nullptr;
  AdamW opt({});
  LocalReducer reducer;
  Optimization o{&trainable, &opt, &reducer, 1.0};
  LossScaler scaler(cfg.loss_scale_config());
  if (scaler.enabled()) o.scaler = &scaler;
  const TrainBatch b = batch_for(c, cfg, shape).to(dev);
  {
    // Everything live should be the net's parameters, the VAE's when the step encodes, and
    // the batch (MBs): more is something kept alive that the step does not need.
    int64_t params = 0, buffers = 0;
    for (const auto& p : m.net->parameters()) params += p.numel() * p.element_size();
    for (const auto& x : m.net->buffers()) buffers += x.numel() * x.element_size();
    if (m.vae)
      for (const auto& p : m.vae->parameters()) params += p.numel() * p.element_size();
    const CpuMemoryStats mem = cpu_memory_stats();
    if (mem.tracked)
      std::fprintf(stderr, "  %s set up: parameters %.3f GiB, buffers %.3f GiB, tensors live %.3f GiB\n", c.name.c_str(),
                   params / double(1 << 30), buffers / double(1 << 30), mem.live / double(1 << 30));
  }
  StepRng rng(1, 0);
  DrawShape ds;
  ds.batch = c.batch;
  ds.frames = c.frames;
  ds.ref_frames = 1 + c.motion;
  ds.height = ds.width = c.size / 8;
  std::vector<double> t;
  for (int i = 0; i <= c.steps; ++i) {
    MicroBatch mb{b, rng.draw(ds).to(dev), {}};  // every condition kept
    std::ofstream trace;
    std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
    if (!g_profile.empty() && i == c.steps) {
      trace.open(g_profile);
      prof = std::make_unique<torch::autograd::profiler::RecordProfile>(trace);
    }
    const bool shapes = !g_shapes.empty() && i == c.steps;
    std::unique_ptr<RssTrace> rss;
    if (!g_rss.empty() && i == c.steps) rss = std::make_unique<RssTrace>(g_rss + "." + c.name);
    if (shapes)
      torch::autograd::profiler::enableProfilerLegacy(
          torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU, /*report_input_shapes=*/true));
    const CpuMemoryStats before = cpu_memory_stats();
    long rss_pages = 0;
    {
      std::ifstream statm("/proc/self/statm");
      statm >> rss_pages >> rss_pages;
    }
    reset_cpu_memory_peak();
    reset_device_peak(dev);
    synchronize(dev);
    const auto t0 = std::chrono::steady_clock::now();
    const StepReport rep = optimization_step(m, settings, o, {mb}, 1e-5);
    synchronize(dev);
    prof.reset();
    rss.reset();
    if (shapes) write_shape_profile(torch::autograd::profiler::disableProfilerLegacy(), g_shapes);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) t.push_back(s);  // step 0 warms up (and creates the AdamW state)
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::fprintf(stderr, "  %s step %d: %.2f s (forward %.1f, backward %.1f, clip + AdamW %.1f), process peak so far %.2f GiB\n",
                 c.name.c_str(), i, s, rep.forward_s, rep.backward_s, rep.update_s, ru.ru_maxrss / 1048576.0);
    // Tensors (the allocator's exact counters) vs the process: what is not tensors.
    if (before.tracked && dev.is_cpu())
      std::fprintf(stderr, "    at step start: resident %.2f GiB, tensors %.2f GiB; tensor peak in the step %.2f GiB\n",
                   rss_pages * 4096.0 / (1 << 30), before.live / double(1 << 30), cpu_memory_stats().peak / double(1 << 30));
    if (const auto peak = device_peak(dev)) {
      const double gib = peak->allocated / double(1 << 30);
      std::fprintf(stderr, "    %s: peak allocated %.2f GiB, reserved %.2f GiB%s\n", dev.str().c_str(), gib,
                   peak->reserved / double(1 << 30), rep.applied ? "" : " (step skipped: loss scale overflow)");
      bench::reported_device_peak_gib() = std::max(bench::reported_device_peak_gib(), gib);
    }
  }
  if (times) *times = t;
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hallo training-step benchmarks"};
  bool tiny = false, anchor = false;
  int steps = 2, size = 256, frames = 8, motion = 2, tiny_steps = 10;
  std::vector<std::string> variants{"ckpt-vae", "ckpt-stored", "nockpt-stored", "nockpt-vae"};
  app.add_flag("--tiny", tiny, "tiny stage-2 step");
  app.add_flag("--anchor", anchor, "the anchor configuration (full SD1.5 widths)");
  app.add_option("--steps", steps, "timed steps per anchor variant (after one warm-up step)");
  app.add_option("--tiny-steps", tiny_steps, "timed tiny steps");
  app.add_option("--variants", variants, "anchor variants: ckpt|nockpt - vae|stored [-keep], comma separated")
      ->delimiter(',');
  bool estimate = false;
  app.add_flag("--estimate", estimate,
               "print `hallo train --dry-run`'s activation estimate for the anchor case (beside the measured peaks)");
  app.add_option("--size", size, "anchor frame size");
  app.add_option("--frames", frames, "anchor frames per clip");
  app.add_option("--motion", motion, "anchor motion frames");
  app.add_option("--profile", g_profile, "write a chrome trace of the last timed step here (slows it down)");
  app.add_option("--profile-shapes", g_shapes, "write time per op and input shapes of the last timed step here");
  app.add_option("--rss-trace", g_rss, "write resident memory over the last timed step to FILE.<variant>");
  std::vector<std::string> keep_blocks = TrainConfig::stage2().solver.checkpoint_keep_blocks;
  app.add_option("--device", g_device, "cpu, cuda or cuda:N (a CUDA build of libtorch)")->capture_default_str();
  app.add_option("--mixed-precision", g_precision, "no, bf16 or fp16 (autocast, float32 master weights; GPUs)")
      ->check(CLI::IsMember({"no", "bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--frozen-dtype", g_frozen, "frozen weights stored in fp32, bf16 or fp16 (with --mixed-precision)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))
      ->capture_default_str();
  app.add_option("--keep", keep_blocks,
                 "blocks that keep activations in the '-keep' variants, comma separated (default: the stage-2 "
                 "config's solver.checkpoint_keep_blocks)")
      ->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  if (!tiny && !anchor) tiny = true;
  if (g_frozen != "fp32" && g_precision == "no") {
    fmt::print(stderr, "--frozen-dtype {} needs --mixed-precision bf16 or fp16\n", g_frozen);
    return 2;
  }

  const auto rt = configure_runtime();
  spdlog::set_level(spdlog::level::warn);
  fmt::print("threads: {}\n", rt.threads);

  if (tiny) {
    Case c;
    c.name = "tiny stage 2";
    c.tiny = true;
    c.size = 128;
    c.frames = 4;
    c.batch = 2;
    c.steps = tiny_steps;
    std::vector<double> t;
    const auto r = bench::run_isolated([&] { return run_case(c, &t); });
    if (r.seconds < 0) {
      fmt::print("tiny stage-2 step: failed (the reason is on stderr)\n");
      return 1;
    }
    fmt::print("tiny stage-2 step (2 x (4+2) frames, 128 px, checkpointing on, VAE on the fly, {}, {}): median {:.3f} s, "
               "{:.2f} samples/s, peak {:.2f} GiB{}\n",
               g_device, g_precision, r.seconds, c.batch / r.seconds, r.peak_gib,
               r.device_peak_gib > 0 ? fmt::format(", GPU {:.2f} GiB", r.device_peak_gib) : std::string());
  }
  if (anchor && estimate) {
    // The dry-run's numbers for this configuration, to hold against the variants' peaks.
    Case c;
    c.size = size;
    c.frames = frames;
    c.motion = motion;
    c.stored_latents = true;
    const auto r = bench::run_isolated([&] {
      const TrainConfig cfg = config_for(c);
      DataShape shape;
      shape.audio_layers = 12;
      shape.audio_dim = 768;
      shape.latent_channels = 4;
      ModelBundle bundle = build_models(cfg, shape, /*need_vae=*/false, /*load=*/false);
      int64_t w = 0;
      for (const auto& p : bundle.net->parameters()) w += p.numel() * 4;
      const auto t0 = std::chrono::steady_clock::now();
      const ActivationEstimate e = estimate_activations(cfg, shape, bundle.net);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double gib = 1024.0 * 1024.0 * 1024.0;
      const int64_t base = w + 2 * e.gradients;
      fmt::print("dry-run estimate ({:.0f} s): weights {:.2f} GiB; gradients produced {:.2f} GiB (+ as much AdamW "
                 "state); activations {:.2f} / {:.2f} GiB (checkpointing on / off) -> tensor peak {:.2f}-{:.2f} / "
                 "{:.2f}-{:.2f} GiB\n",
                 s, w / gib, e.gradients / gib, e.activations[0] / gib, e.activations[1] / gib,
                 (base + e.step_peak_low(0)) / gib, (base + e.step_peak_high(0)) / gib,
                 (base + e.step_peak_low(1)) / gib, (base + e.step_peak_high(1)) / gib);
      std::fflush(stdout);
      return s;
    });
    if (r.seconds < 0) fmt::print("dry-run estimate: failed\n");
  }
  if (anchor) {
    fmt::print("anchor: batch 1, {}^2, {} + {} motion frames, {}, standard AdamW, on {}; upstream (CPU, 256^2, 8 + 2) "
               "{:.0f} s / {:.1f} GiB\n",
               size, frames, motion, g_precision == "no" ? "fp32" : g_precision + " autocast", g_device, kAnchorSeconds,
               kAnchorGiB);
    fmt::print("{:<16} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}\n", "variant", "median s", "peak GiB", "vs anchor",
               "mem vs anchor", "vs first", "GPU GiB");
    double first = 0;
    for (const std::string& v : variants) {
      if (v == "none") continue;  // --variants none: the estimate alone
      Case c;
      c.name = v;
      c.checkpointing = v.rfind("ckpt", 0) == 0;
      c.stored_latents = v.find("stored") != std::string::npos;
      c.size = size;
      c.frames = frames;
      c.motion = motion;
      c.steps = steps;
      if (v.find("-keep") != std::string::npos) c.keep = keep_blocks;
      const auto r = bench::run_isolated([&] { return run_case(c, nullptr); });
      if (first == 0 && r.seconds > 0) first = r.seconds;
      if (r.seconds < 0) {
        fmt::print("{:<16} {:>10} {:>10.2f}   (failed or killed)\n", v, "-", r.peak_gib);
        continue;
      }
      fmt::print("{:<16} {:>10.1f} {:>10.2f} {:>9.2f}x {:>11.2f}x {:>11.2f}x {:>10}\n", v, r.seconds, r.peak_gib,
                 kAnchorSeconds / r.seconds, r.peak_gib / kAnchorGiB, first / r.seconds,
                 r.device_peak_gib > 0 ? fmt::format("{:.2f}", r.device_peak_gib) : std::string("-"));
      std::fflush(stdout);
    }
  }
  return 0;
}
