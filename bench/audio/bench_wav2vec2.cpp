// Audio feature cost on 10 s of 16 kHz audio with wav2vec2-base (random weights:
// the cost does not depend on the values), at 2 intra-op threads by default:
//   hallo:    CNN on the samples -> linear interpolation to the video frame count
//             (250 at 25 fps) -> projection + 12-layer encoder (Hallo's path)
//   hf:       CNN -> projection + encoder on all 499 CNN frames (plain HF
//             Wav2Vec2Model), the baseline timed in the same run
//   logmel:   the weight-free extractor on the same audio
// Each is warmed up once, then the median of --reps runs is printed with the
// real-time factor (audio seconds / compute seconds); hallo and hf (and the two
// encoder-only rows) are timed in alternation so background load hits both alike.
//   bench_wav2vec2 --seconds 10 --threads 2 --reps 3
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <utility>
#include <vector>

#include "core/runtime.h"
#include "model/audio/audio_features.h"
#include "model/wav2vec2/wav2vec2.h"

using namespace hallo;

namespace {

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median and minimum of the timed runs: on a shared machine the minimum is the
// steadier estimate of the undisturbed cost, so both are printed.
struct Timing {
  double median = 0, min = 0;
};
Timing summarize(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front()};
}

// Warm-up once, then `reps` timed runs, in seconds.
Timing time_runs(int reps, const std::function<void()>& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds_of(f));
  return summarize(t);
}

// Two paths timed in alternation (A B, B A, ...) so that load from other
// processes on a shared machine falls on both alike.
std::pair<Timing, Timing> time_runs_ab(int reps, const std::function<void()>& a, const std::function<void()>& b) {
  a();
  b();
  std::vector<double> ta, tb;
  for (int i = 0; i < reps; ++i) {
    if (i % 2 == 0) {
      ta.push_back(seconds_of(a));
      tb.push_back(seconds_of(b));
    } else {
      tb.push_back(seconds_of(b));
      ta.push_back(seconds_of(a));
    }
  }
  return {summarize(ta), summarize(tb)};
}

// Speech-like test signal: a few harmonics plus deterministic noise.
std::vector<float> make_wave(double seconds, int rate) {
  std::vector<float> w(static_cast<size_t>(seconds * rate));
  uint32_t s = 20240612;
  for (size_t i = 0; i < w.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    s = s * 1664525u + 1013904223u;
    w[i] = static_cast<float>(0.3 * std::sin(2 * M_PI * 180 * t) + 0.15 * std::sin(2 * M_PI * 540 * t) +
                              0.05 * (static_cast<double>(s >> 8) / 16777216.0 - 0.5));
  }
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wav2vec2-base audio features: Hallo's interpolate-then-encode path vs the plain HF path"};
  double seconds = 10;
  int threads = 2, reps = 3;
  double fps = 25;
  app.add_option("--seconds", seconds, "audio length")->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "intra-op threads")->check(CLI::PositiveNumber);
  app.add_option("--reps", reps, "timed runs (median)")->check(CLI::PositiveNumber);
  app.add_option("--fps", fps, "video frame rate Hallo interpolates to")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  const auto rt = configure_runtime(threads);
  torch::NoGradGuard ng;
  const int rate = 16000;
  const auto wave = make_wave(seconds, rate);
  const int64_t samples = static_cast<int64_t>(wave.size());
  const int64_t frames = audio::video_frames_for(samples, rate, fps);

  model::Wav2Vec2Model net(model::Wav2Vec2Config::base());
  net->eval();
  auto x = audio::normalize_wave(at::from_blob(const_cast<float*>(wave.data()), {samples}, at::kFloat))
               .unsqueeze(0);  // [1, S]
  const int64_t cnn_frames = net->config().feature_frames(samples);
  fmt::print("wav2vec2-base, {:.1f} s at {} Hz ({} samples), {} threads{}, median of {} after 1 warm-up\n", seconds,
             rate, samples, rt.threads, rt.malloc_tuned ? ", malloc tuned" : "", reps);

  at::Tensor sink;
  const Timing t_cnn = time_runs(reps, [&] { sink = net->extract_features(x); });  // [1, T, 512]
  const auto feats = net->extract_features(x);                   // [1, 499, 512]
  const auto resampled = audio::interpolate_frames(feats, frames);  // [1, 250, 512]
  const auto [t_enc_hallo, t_enc_hf] = time_runs_ab(
      reps, [&] { sink = net->encode(resampled).back(); }, [&] { sink = net->encode(feats).back(); });
  const auto [t_hallo, t_hf] = time_runs_ab(
      reps,
      [&] {
        auto f = net->extract_features(x);                                 // [1, 499, 512]
        sink = net->encode(audio::interpolate_frames(f, frames)).back();  // [1, 250, 768]
      },
      [&] { sink = net->encode(net->extract_features(x)).back(); });  // [1, 499, 768]

  audio::AudioFeatureConfig lc;
  lc.extractor = "logmel";
  lc.fps = fps;
  auto logmel = audio::make_audio_extractor(lc);
  const Timing t_mel = time_runs(reps, [&] { sink = logmel->extract(wave).emb; });  // [250, 1, 80]

  fmt::print("  {:<8} {:<44} {:>11} {:>11} {:>10}\n", "", "", "median", "min", "RTF");
  auto row = [&](const char* name, const std::string& what, const Timing& t) {
    fmt::print("  {:<8} {:<44} {:8.1f} ms {:8.1f} ms {:9.1f}x\n", name, what, t.median * 1e3, t.min * 1e3,
               seconds / t.median);
  };
  row("cnn", fmt::format("CNN only -> {} frames", cnn_frames), t_cnn);
  row("enc", fmt::format("encoder only on {} frames", frames), t_enc_hallo);
  row("enc", fmt::format("encoder only on {} frames", cnn_frames), t_enc_hf);
  row("hallo", fmt::format("CNN -> interpolate to {} -> encoder", frames), t_hallo);
  row("hf", fmt::format("CNN -> encoder on {} frames (baseline)", cnn_frames), t_hf);
  row("logmel", fmt::format("log-mel {} x {}", frames, lc.n_mels), t_mel);
  fmt::print("  hallo / hf time ratio: {:.3f} median, {:.3f} min ({:.2f}x faster than the plain HF path)\n",
             t_hallo.median / t_hf.median, t_hallo.min / t_hf.min, t_hf.median / t_hallo.median);
  fmt::print("  logmel / hallo time ratio: {:.4f} median\n", t_mel.median / t_hallo.median);
  return sink.defined() ? 0 : 1;
}
