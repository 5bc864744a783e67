// bench_prepare: `hallo prepare` throughput in seconds of video per second of
// wall time, at 512 and 256 px synthetic talking heads, on --jobs workers.
// Printed against real time (x realtime) and against a baseline measured in
// the same run: decoding the same videos at 25 fps to RGB (the floor any
// preparation must pay), so the ratio shows what analysis + shards add.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "core/runtime.h"
#include "data/prepare/prepare.h"
#include "data/synth/synth.h"
#include "media/video_reader.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app{"hallo prepare throughput"};
  int count = 2, jobs = 2;
  double seconds = 8;
  std::vector<int> sizes{512, 256};
  app.add_option("--count", count, "videos per size");
  app.add_option("--seconds", seconds, "seconds per video");
  app.add_option("--sizes", sizes, "source video sizes");
  app.add_option("--jobs", jobs, "prepare workers");
  CLI11_PARSE(app, argc, argv);
  hallo::configure_runtime(jobs);
  std::random_device rd;
  const fs::path root = fs::temp_directory_path() / fmt::format("hallo_bench_prepare_{}", rd());
  fmt::print("bench_prepare: {} videos x {:.0f} s per size, {} jobs\n", count, seconds, jobs);
  fmt::print("{:>6} {:>9} {:>10} {:>12} {:>12} {:>14}\n", "size", "video s", "decode s", "prepare s", "x realtime",
             "prepare/decode");
  for (int size : sizes) {
    const fs::path in = root / fmt::format("in_{}", size), out = root / fmt::format("out_{}", size);
    hallo::synth::SynthConfig sc;
    sc.out_dir = in;
    sc.seconds = seconds;
    sc.size = size;
    sc.seed = 1;
    fs::create_directories(in);
    hallo::synth::Synthesizer syn(sc);
    for (int i = 0; i < count; ++i) syn.make(i);

    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      hallo::media::VideoReader r(in / (hallo::synth::clip_name(i) + ".mp4"));
      hallo::media::RgbFrame f;
      while (r.next(f)) {
      }
    }
    const double decode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    hallo::data::PrepareOptions po;
    po.inputs = {in};
    po.out = out;
    po.jobs = jobs;
    po.config.resolution = std::min(size, 512) / 64 * 64;
    po.config.clip_length = 50;
    t0 = std::chrono::steady_clock::now();
    auto rep = hallo::data::run_prepare(po);
    const double prep_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double video_s = count * seconds;
    fmt::print("{:>6} {:>9.1f} {:>10.2f} {:>12.2f} {:>11.2f}x {:>13.2f}x   ({} clips)\n", size, video_s, decode_s, prep_s,
               video_s / prep_s, prep_s / decode_s, rep.json["totals"]["clips"].get<int>());
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  return 0;
}
