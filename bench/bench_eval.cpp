// Throughput of the `hallo eval` networks on CPU (random weights; speed does not
// depend on the values): frames per second of FID features (pytorch-fid InceptionV3,
// 512^2 frames resized to 299), FVD features (I3D at 224^2: DisCo's whole-video clip
// and 16-frame clips) and SyncNet (one 5-frame window + its MFCC window per video
// frame). Baseline in the same run: the same network one sample per call (batch 1),
// the way a per-frame loop would call it. Variants alternate in every repeat; medians.
//   bench_eval [--frames 64] [--repeats 3] [--threads 2]
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include "core/runtime.h"
#include "eval/nets/i3d.h"
#include "eval/nets/inception_fid.h"
#include "eval/nets/syncnet.h"

using namespace hallo;
namespace nets = hallo::eval::nets;

namespace {

double seconds(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("hallo eval network throughput");
  int frames = 64, repeats = 3, threads = 0;
  app.add_option("--frames", frames, "frames per measurement (a multiple of 16)");
  app.add_option("--repeats", repeats, "repeats (medians are reported)");
  app.add_option("--threads", threads, "intra-op threads (0: HALLO_THREADS or all cores)");
  CLI11_PARSE(app, argc, argv);
  frames = std::max(16, frames / 16 * 16);
  const RuntimeInfo rt = configure_runtime(threads);
  fmt::print("threads: {}, frames per measurement: {}, repeats: {}\n\n", rt.threads, frames, repeats);
  torch::NoGradGuard ng;
  at::manual_seed(0);

  nets::FidInceptionV3 fid;
  fid->eval();
  nets::I3DOptions disco;
  disco.bn_eps = 1e-3;
  disco.final_pool = {1, 7, 7};
  nets::InceptionI3d i3d_disco(disco), i3d_clips(nets::I3DOptions{1e-3, {2, 7, 7}, 400});
  i3d_disco->eval();
  i3d_clips->eval();
  nets::SyncNet sync;
  sync->eval();

  const at::Tensor rgb512 = at::randint(0, 256, {frames, 512, 512, 3}, at::kLong).to(at::kByte);
  const at::Tensor video224 = at::rand({1, 3, frames, 224, 224}) * 2 - 1;
  const at::Tensor clips = video224.view({1, 3, frames / 16, 16, 224, 224}).permute({0, 2, 1, 3, 4, 5}).reshape({frames / 16, 3, 16, 224, 224});
  const int sync_windows = std::min(frames, 40);
  const at::Tensor lip = at::randint(0, 256, {sync_windows, 3, 5, 224, 224}, at::kLong).to(at::kFloat);
  const at::Tensor aud = at::randn({sync_windows, 1, 13, 20});

  struct Variant {
    std::string name;
    double units;  // frames (or windows) per call of fn
    std::function<void()> fn;
  };
  std::vector<std::pair<Variant, Variant>> cases = {
      {{"FID features, batch 4", double(frames), [&] { nets::fid_features(*fid, rgb512, 4); }},
       {"FID features, batch 1 (baseline)", double(frames), [&] { nets::fid_features(*fid, rgb512, 1); }}},
      {{"FID features, batch 16", double(frames), [&] { nets::fid_features(*fid, rgb512, 16); }},
       {"FID features, batch 1 (baseline)", double(frames), [&] { nets::fid_features(*fid, rgb512, 1); }}},
      {{"FVD I3D, DisCo whole clip", double(frames), [&] { i3d_disco->forward(video224); }},
       {"FVD I3D, 16-frame clips one per call (baseline)", double(frames),
        [&] { for (int64_t k = 0; k < clips.size(0); ++k) i3d_clips->forward(clips.narrow(0, k, 1)); }}},
      {{"FVD I3D, 16-frame clips batched", double(frames), [&] { i3d_clips->forward(clips); }},
       {"FVD I3D, 16-frame clips one per call (baseline)", double(frames),
        [&] { for (int64_t k = 0; k < clips.size(0); ++k) i3d_clips->forward(clips.narrow(0, k, 1)); }}},
      {{"SyncNet lip+audio towers, batch 20", double(sync_windows),
        [&] {
          for (int i = 0; i < sync_windows; i += 20) {
            const int n = std::min(20, sync_windows - i);
            sync->forward_lip(lip.narrow(0, i, n));
            sync->forward_aud(aud.narrow(0, i, n));
          }
        }},
       {"SyncNet lip+audio towers, batch 1 (baseline)", double(sync_windows), [&] {
          for (int i = 0; i < sync_windows; ++i) {
            sync->forward_lip(lip.narrow(0, i, 1));
            sync->forward_aud(aud.narrow(0, i, 1));
          }
        }}},
  };
  fmt::print("| network | frames/s | baseline frames/s | speed-up |\n|---|---|---|---|\n");
  for (auto& [v, base] : cases) {
    v.fn();  // warm-up (allocator, first-call setup)
    std::vector<double> tv, tb;
    for (int r = 0; r < repeats; ++r) {  // alternate the variants
      tv.push_back(seconds(v.fn));
      tb.push_back(seconds(base.fn));
    }
    const double fv = v.units / median(tv), fb = base.units / median(tb);
    fmt::print("| {} | {:.2f} | {:.2f} ({}) | {:.2f}x |\n", v.name, fv, fb, base.name, fv / fb);
    std::fflush(stdout);
  }
  return 0;
}
