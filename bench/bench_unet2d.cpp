// Full-size SD1.5 UNet2DConditionModel forward (random weights) on CPU:
// time per forward and peak RSS at 1x4xSxS latents, hallo's attention versus an
// upstream-equivalent baseline (full score matrix, as diffusers' AttnProcessor on
// torch 1.13) measured in the same run. Each (variant, size) runs in its own
// process so peak RSS is its own. Prints ratios and the upstream reference.
//   bench_unet2d --config ../shared/golden/sd15_unet2d_full.config.json --sizes 32,64 --reps 3
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <vector>

#include "bench/isolated_run.h"
#include "core/runtime.h"
#include "core/threads.h"
#include "model/io/hf_config.h"
#include "model/nn/attention_kernel.h"
#include "model/unet2d/unet_2d_condition.h"

using namespace hallo;

namespace {

double run_child(const model::UNet2DConfig& cfg, int size, int reps, nn::AttentionBackend backend) {
  nn::attention_settings().backend = backend;
  at::manual_seed(0);
  model::UNet2DConditionModel unet(cfg);
  unet->eval();
  c10::InferenceMode guard;
  auto x = at::randn({1, cfg.in_channels, size, size});
  auto ctx = at::randn({1, 77, cfg.cross_attention_dim});
  auto t = at::full({1}, 500, at::kLong);
  unet->forward(x, t, ctx);  // warm-up
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto y = unet->forward(x, t, ctx);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}


}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SD1.5 UNet2D forward benchmark"};
  std::string config = "../shared/golden/sd15_unet2d_full.config.json";
  std::vector<int> sizes{32, 64};
  int reps = 3, threads = 2;
  bool skip_baseline = false, no_malloc_tuning = false;
  app.add_option("--config", config, "diffusers UNet config.json (full size)");
  app.add_option("--sizes", sizes, "latent sizes S (input 1x4xSxS)")->delimiter(',');
  app.add_option("--reps", reps, "timed forwards per case (median reported)");
  app.add_option("--threads", threads, "intra-op threads");
  app.add_flag("--skip-baseline", skip_baseline, "only run hallo's attention");
  app.add_flag("--no-malloc-tuning", no_malloc_tuning, "keep glibc's default mmap/trim thresholds");
  CLI11_PARSE(app, argc, argv);
  configure_threads(threads);
  const bool tuned = !no_malloc_tuning && configure_allocator();

  const auto cfg = model::UNet2DConfig::from_json(io::load_json_file(config), config);
  const std::map<int, std::pair<double, double>> upstream = {{32, {2.56, 0}}, {64, {11.0, 0}}};
  fmt::print("UNet2D {} | threads {} | reps {} | attention: {} | malloc tuning: {}\n", config, threads, reps,
             nn::sdpa_available() ? "sdpa" : "chunked math", tuned ? "on" : "off");
  fmt::print("{:>6} {:>22} {:>12} {:>12} {:>10} {:>10} {:>14}\n", "latent", "variant", "forward s", "peak GiB",
             "speedup", "mem ratio", "vs upstream");
  for (int s : sizes) {
    bench::CaseResult base{};
    if (!skip_baseline) {
      base = bench::run_isolated([&] { return run_child(cfg, s, reps, nn::AttentionBackend::Math); });
      fmt::print("{:>6} {:>22} {:>12.3f} {:>12.2f} {:>10} {:>10} {:>14}\n", s, "baseline(full scores)", base.seconds,
                 base.peak_gib, "1.00x", "1.00x", "");
    }
    const auto ours = bench::run_isolated([&] { return run_child(cfg, s, reps, nn::AttentionBackend::Auto); });
    std::string vs_up = upstream.count(s) ? fmt::format("{:.2f}x", upstream.at(s).first / ours.seconds) : "-";
    fmt::print("{:>6} {:>22} {:>12.3f} {:>12.2f} {:>10} {:>10} {:>14}\n", s, "hallo", ours.seconds, ours.peak_gib,
               base.seconds > 0 ? fmt::format("{:.2f}x", base.seconds / ours.seconds) : "-",
               base.peak_gib > 0 ? fmt::format("{:.2f}x", ours.peak_gib / base.peak_gib) : "-", vs_up);
    std::fflush(stdout);
  }
  fmt::print("upstream (diffusers 0.27.2, torch 1.13, same machine class, 2 threads): 32x32 2.56 s, 64x64 11.0 s\n");
  return 0;
}
