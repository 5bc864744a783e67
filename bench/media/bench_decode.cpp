// Decode throughput of hallo_media's VideoReader on a 512x512 H.264 clip
// (libx264 medium, crf 18, 30 fps, 250 frames, made here with VideoWriter from
// the committed portrait panning across the frame), against the ffmpeg CLI
// decoding the same file to the null muxer in the same run:
//   native:  every source frame, converted to 512x512 RGB24
//   25fps:   25 fps conversion (drops 1 in 6) + resize to 256x256 RGB24
//   ffmpeg:  ffmpeg -v error -threads 2 -i clip.mp4 -f null -   (decode only, no RGB)
// Best of --reps runs. Prints frames/s and the ratio to ffmpeg.
//   bench_decode --frames 250 --reps 3
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/error.h"
#include "media/video_reader.h"
#include "media/video_writer.h"

namespace fs = std::filesystem;
using namespace hallo;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// 512x512 source image: the portrait when present, else a textured gradient.
std::vector<uint8_t> source_image(const fs::path& asset, int size) {
  if (fs::exists(asset)) {
    media::VideoDecodeOptions o;
    o.fps = 0;
    o.out_width = o.out_height = size;
    const auto frames = media::read_video(asset, o);  // libav decodes PNG too
    if (!frames.empty()) return frames[0].rgb;
  }
  std::vector<uint8_t> img(static_cast<size_t>(size) * size * 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        img[(static_cast<size_t>(y) * size + x) * 3 + c] = static_cast<uint8_t>((x * (c + 1) + y * 3 + (x ^ y)) & 255);
  return img;
}

void make_clip(const fs::path& out, const fs::path& asset, int frames, int size) {
  const auto img = source_image(asset, size);
  media::EncodeOptions o;
  o.fps = 30;
  media::VideoWriter w(out, size, size, o);
  std::vector<uint8_t> frame(img.size());
  uint32_t rng = 12345;
  const size_t row = static_cast<size_t>(size) * 3;
  for (int k = 0; k < frames; ++k) {
    // Pan: shift rows and columns by a few pixels per frame (wrapping), so every
    // frame has real motion for the encoder and decoder.
    const int dx = (k * 3) % size, dy = (k * 2) % size;
    for (int y = 0; y < size; ++y) {
      const uint8_t* src = img.data() + ((y + dy) % size) * row;
      uint8_t* dst = frame.data() + y * row;
      const size_t split = static_cast<size_t>(dx) * 3;
      std::copy(src + split, src + row, dst);
      std::copy(src, src + split, dst + (row - split));
    }
    // Light sensor-like noise keeps the bitrate near a real talking-head clip
    // (a pure integer-pixel pan compresses to almost nothing).
    for (auto& v : frame) {
      rng = rng * 1664525u + 1013904223u;
      v = static_cast<uint8_t>(std::clamp(static_cast<int>(v) + static_cast<int>(rng >> 29) - 4, 0, 255));
    }
    w.write_rgb(frame.data());
  }
  w.close();
}

struct Result {
  double seconds = 1e30;
  int64_t frames = 0;
};

Result best_of(int reps, const std::function<int64_t()>& body) {
  Result r;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t n = body();
    const double s = seconds_since(t0);
    if (s < r.seconds) r = {s, n};
  }
  return r;
}

int64_t decode_all(const fs::path& clip, const media::VideoDecodeOptions& o) {
  media::VideoReader r(clip, o);
  media::RgbFrame f;
  int64_t n = 0;
  while (r.next(f)) ++n;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hallo_media decode throughput vs the ffmpeg CLI"};
  app.allow_extras();  // bench/run.sh passes Google Benchmark flags to every bench_*
  int frames = 250, size = 512, reps = 3;
  std::string asset = HALLO_ASSETS_DIR "/astronaut.png";
  std::string keep;
  app.add_option("--frames", frames, "frames in the generated clip (30 fps)");
  app.add_option("--size", size, "clip width and height");
  app.add_option("--reps", reps, "runs per case (best reported)");
  app.add_option("--asset", asset, "image panned across the clip");
  app.add_option("--keep", keep, "write the clip here and keep it");
  CLI11_PARSE(app, argc, argv);

  try {
    const fs::path dir = fs::temp_directory_path() / fmt::format("hallo_bench_decode_{}", ::getpid());
    fs::create_directories(dir);
    const fs::path clip = keep.empty() ? dir / "clip.mp4" : fs::path(keep);
    if (frames < 1 || size < 16) fail("need --frames >= 1 and --size >= 16");
    auto t0 = std::chrono::steady_clock::now();
    make_clip(clip, asset, frames, size);
    const double enc_s = seconds_since(t0);
    fmt::print("clip: {}x{} H.264 (libx264 medium crf 18), {} frames at 30 fps, {:.2f} MB, encoded in {:.2f} s "
               "({:.1f} frames/s)\n",
               size, size, frames, static_cast<double>(fs::file_size(clip)) / 1e6, enc_s, frames / enc_s);

    media::VideoDecodeOptions native;
    native.fps = 0;
    const Result a = best_of(reps, [&] { return decode_all(clip, native); });

    media::VideoDecodeOptions conv;
    conv.fps = 25;
    conv.out_width = conv.out_height = size / 2;
    const Result b = best_of(reps, [&] { return decode_all(clip, conv); });

    const std::string cmd = fmt::format("ffmpeg -nostdin -v error -threads 2 -i '{}' -f null -", clip.string());
    const Result c = best_of(reps, [&]() -> int64_t {
      if (std::system(cmd.c_str()) != 0) fail("baseline command failed: {}", cmd);
      return frames;
    });

    // ffmpeg's process start and probing, timed on a one-frame clip of the same
    // size, so the decode rate can also be compared without it.
    const fs::path one = dir / "one.mp4";
    make_clip(one, asset, 1, size);
    const std::string cmd1 = fmt::format("ffmpeg -nostdin -v error -threads 2 -i '{}' -f null -", one.string());
    const Result startup = best_of(reps, [&]() -> int64_t {
      if (std::system(cmd1.c_str()) != 0) fail("baseline command failed: {}", cmd1);
      return 1;
    });
    const double ff_fps = c.frames / c.seconds;
    const double ff_fps_net = c.frames / std::max(1e-6, c.seconds - startup.seconds);
    fmt::print("{:<44} {:>7} {:>9} {:>10} {:>14} {:>16}\n", "case", "frames", "seconds", "frames/s",
               "vs ffmpeg CLI", "vs ffmpeg net");
    auto row = [&](const std::string& name, const Result& r, int64_t src_frames) {
      // Compare source frames decoded per second (the conversion case decodes
      // all of them but outputs fewer).
      const double fps = src_frames / r.seconds;
      fmt::print("{:<44} {:>7} {:>9.3f} {:>10.1f} {:>13.2f}x {:>15.2f}x\n", name, r.frames, r.seconds, fps,
                 fps / ff_fps, fps / ff_fps_net);
    };
    row(fmt::format("VideoReader native -> {0}x{0} RGB", size), a, frames);
    row(fmt::format("VideoReader 25 fps + resize -> {0}x{0} RGB", size / 2), b, frames);
    row("ffmpeg -threads 2 -f null (decode only)", c, frames);
    fmt::print("ffmpeg start-up (1-frame clip): {:.3f} s; 'net' subtracts it from the baseline\n",
               startup.seconds);
    fmt::print("(frames/s counts decoded source frames; the 25 fps case returns {} output frames, {:.1f}/s)\n",
               b.frames, b.frames / b.seconds);
    fs::remove(dir / "one.mp4");
    if (keep.empty()) fs::remove_all(dir);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_decode: {}\n", e.what());
    return 1;
  }
  return 0;
}
