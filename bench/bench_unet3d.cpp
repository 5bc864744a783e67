// Full-size Hallo denoising UNet3D forward (random weights) on CPU with a
// reference bank, audio tokens and masks: 1x4xFxSxS latents, CFG batch of 1
// (the case). Hallo's attention vs an upstream-equivalent baseline (full
// score matrices), each in its own process for its own peak RSS.
//   bench_unet3d --config ../shared/golden/hallo_unet3d_full.config.json --frames 16 --sizes 32,64
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <torch/csrc/autograd/profiler_legacy.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <cstdio>

#include "bench/isolated_run.h"
#include "core/runtime.h"
#include "model/hallo/unet_3d.h"
#include "model/io/hf_config.h"
#include "model/nn/attention_kernel.h"

using namespace hallo;

namespace {


std::string g_profile;  // --profile: chrome trace of the timed forward (libtorch's legacy profiler)

double run_child(const model::UNet3DConfig& cfg, int frames, int size, nn::AttentionBackend backend) {
  nn::attention_settings().backend = backend;
  at::manual_seed(0);
  model::UNet3DConditionModel unet(cfg);
  unet->eval();
  c10::InferenceMode guard;
  const auto& b = cfg.base;
  const int64_t c0 = b.block_out_channels[0];
  auto x = at::randn({1, b.in_channels, frames, size, size});
  auto ctx = at::randn({1, 4, b.cross_attention_dim});
  auto face = at::randn({1, c0, frames, size, size});
  auto audio = at::randn({1, frames, 32, cfg.audio_attention_dim});
  model::AudioMasks masks;
  for (int l = 0, s = size; l < 4; ++l, s = (s + 1) / 2) {
    masks.full.push_back(at::rand({frames, s * s}));
    masks.face.push_back(at::rand({frames, s * s}));
    masks.lip.push_back(at::rand({frames, s * s}));
  }
  // Reference bank as ReferenceNet writes it for [ref, motion x2] (no CFG): [3, HW, C] per block.
  model::ReferenceBank bank;
  for (const auto& blk : unet->transformer_blocks()) {
    const int level = blk.path.rfind("mid", 0) == 0 ? 3
                      : blk.path.rfind("down_blocks.", 0) == 0 ? blk.path[12] - '0'
                                                                : 3 - (blk.path[10] - '0');
    int s = size;
    for (int l = 0; l < level; ++l) s = (s + 1) / 2;
    bank.put(blk.path, at::randn({3, s * s, blk.width}).to(cfg.bank_dtype));
  }
  std::ofstream trace_file;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  if (!g_profile.empty()) {
    trace_file.open(g_profile);
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(trace_file);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto y = unet->forward(x, at::scalar_tensor(999, at::kLong), ctx, face, masks, audio, at::ones({3}), &bank, nullptr,
                         /*uncond_samples=*/0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  profile.reset();
  return secs;
}


}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Hallo UNet3D forward benchmark"};
  std::string config = "../shared/golden/hallo_unet3d_full.config.json";
  std::vector<int> sizes{32};
  int frames = 16, threads = 2;
  bool baseline = false;
  app.add_option("--config", config, "UNet3D config.json (full size)");
  app.add_option("--sizes", sizes, "latent sizes S")->delimiter(',');
  app.add_option("--frames", frames, "frames per clip");
  app.add_option("--threads", threads, "intra-op threads");
  app.add_flag("--baseline", baseline, "also run the full-score-matrix baseline");
  app.add_option("--profile", g_profile, "write a chrome trace of the forward here (slows it down)");
  CLI11_PARSE(app, argc, argv);
  configure_runtime(threads);
  const auto cfg = model::UNet3DConfig::from_json(io::load_json_file(config), config);
  fmt::print("UNet3D {} | frames {} | threads {} | attention {}\n", config, frames, threads,
             nn::sdpa_available() ? "sdpa" : "chunked math");
  fmt::print("{:>6} {:>22} {:>12} {:>10} {:>14}\n", "latent", "variant", "forward s", "peak GiB", "vs upstream");
  for (int s : sizes) {
    if (baseline) {
      const auto b = bench::run_isolated([&] { return run_child(cfg, frames, s, nn::AttentionBackend::Math); });
      fmt::print("{:>6} {:>22} {:>12.2f} {:>10.2f}\n", s, "baseline(full scores)", b.seconds, b.peak_gib);
    }
    const auto r = bench::run_isolated([&] { return run_child(cfg, frames, s, nn::AttentionBackend::Auto); });
    fmt::print("{:>6} {:>22} {:>12.2f} {:>10.2f} {:>14}\n", s, "hallo", r.seconds, r.peak_gib,
               s == 32 && r.seconds > 0 ? fmt::format("{:.2f}x", 68.0 / r.seconds) : "-");
    std::fflush(stdout);
  }
  fmt::print("upstream (same machine class, libtorch 1.13): 1x4x16x32x32 68 s, 12.3 GiB; 64x64 did not fit in 24 GB\n");
  return 0;
}
