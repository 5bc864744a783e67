// bench_prepare: `hallo prepare` throughput in seconds of video per second of
// wall time, at 512 and 256 px synthetic talking heads, on --jobs workers.
// Printed against real time (x realtime) and against a baseline measured in
// the same run: decoding the same videos at 25 fps to RGB (the floor any
// preparation must pay), so the ratio shows what analysis + shards add.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>

#include "core/runtime.h"
#include "data/prepare/prepare.h"
#include "data/synth/synth.h"
#include "media/video_reader.h"

namespace fs = std::filesystem;

namespace {
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hallo prepare throughput"};
  int count = 2, jobs = 2, repeat = 3;
  double seconds = 8;
  std::vector<int> sizes{512, 256};
  std::vector<int> detect_every{1, 5};
  app.add_option("--count", count, "videos per size");
  app.add_option("--seconds", seconds, "seconds per video");
  app.add_option("--sizes", sizes, "source video sizes");
  app.add_option("--jobs", jobs, "prepare workers");
  app.add_option("--repeat", repeat, "runs of each variant, alternated; medians are printed");
  app.add_option("--detect-every", detect_every, "face.detect_every variants (the default config has 5)");
  CLI11_PARSE(app, argc, argv);
  hallo::configure_runtime(jobs);
  std::random_device rd;
  const fs::path root = fs::temp_directory_path() / fmt::format("hallo_bench_prepare_{}", rd());
  fmt::print("bench_prepare: {} videos x {:.0f} s per size, {} jobs, default config, median of {}\n", count, seconds,
             jobs, repeat);
  fmt::print("{:>6} {:>9} {:>10} {:>13} {:>12} {:>12} {:>14}\n", "size", "video s", "decode s", "detect_every",
             "prepare s", "x realtime", "prepare/decode");
  for (int size : sizes) {
    const fs::path in = root / fmt::format("in_{}", size);
    hallo::synth::SynthConfig sc;
    sc.out_dir = in;
    sc.seconds = seconds;
    sc.size = size;
    sc.seed = 1;
    fs::create_directories(in);
    hallo::synth::Synthesizer syn(sc);
    for (int i = 0; i < count; ++i) syn.make(i);

    std::vector<double> decode_s;
    std::vector<std::vector<double>> prep_s(detect_every.size());
    std::vector<int> clips(detect_every.size());
    for (int rep = 0; rep < repeat; ++rep) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < count; ++i) {
        hallo::media::VideoReader r(in / (hallo::synth::clip_name(i) + ".mp4"));
        hallo::media::RgbFrame f;
        while (r.next(f)) {
        }
      }
      decode_s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      for (size_t v = 0; v < detect_every.size(); ++v) {
        const fs::path out = root / fmt::format("out_{}_{}_{}", size, v, rep);
        hallo::data::PrepareOptions po;
        po.inputs = {in};
        po.out = out;
        po.jobs = jobs;
        po.config.resolution = std::min(size, 512) / 64 * 64;  // shards at the source size
        po.config.face.detect_every = detect_every[v];
        t0 = std::chrono::steady_clock::now();
        auto r = hallo::data::run_prepare(po);
        prep_s[v].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        clips[v] = r.json["totals"]["clips"].get<int>();
        std::error_code ec;
        fs::remove_all(out, ec);
      }
    }
    const double video_s = count * seconds, dec = median(decode_s);
    for (size_t v = 0; v < detect_every.size(); ++v) {
      const double p = median(prep_s[v]);
      fmt::print("{:>6} {:>9.1f} {:>10.2f} {:>13} {:>12.2f} {:>11.2f}x {:>13.2f}x   ({} clips)\n", size, video_s, dec,
                 detect_every[v], p, video_s / p, p / dec, clips[v]);
    }
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
