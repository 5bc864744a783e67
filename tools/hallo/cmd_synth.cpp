// hallo synth --out DIR --count N: deterministic synthetic talking-head clips
// (espeak-ng speech, loudness-driven mouth, slight head motion) with JSON
// ground truth, and with --variants the bad/edge inputs the data-pipeline
// tests need. Same seed, same files.
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/progress.h"
#include "data/synth/synth.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

Command register_synth(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string out, portrait;
    int count = 1;
    bool variants = false;
    synth::SynthConfig cfg;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("synth", "Generate synthetic talking-head videos with ground truth (deterministic)");
  sub->add_option("--out", o->out, "output directory (synth_XXXX.mp4 + synth_XXXX.json)")->required();
  sub->add_option("--count", o->count, "number of videos")->check(CLI::Range(0, 100000))->capture_default_str();
  sub->add_option("--seconds", o->cfg.seconds, "length of each video")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  sub->add_option("--size", o->cfg.size, "frame width and height in pixels")
      ->check(CLI::Range(64, 4096))
      ->capture_default_str();
  sub->add_option("--fps", o->cfg.fps, "frame rate")->check(CLI::Range(1.0, 120.0))->capture_default_str();
  sub->add_option("--sample-rate", o->cfg.sample_rate, "audio sample rate")
      ->check(CLI::IsMember({16000, 44100}))
      ->capture_default_str();
  sub->add_option("--seed", o->cfg.seed, "random seed (speech, pauses, head motion)")->capture_default_str();
  sub->add_option("--portrait", o->portrait,
                  "portrait image with one frontal face (default: $HALLO_ASSETS_DIR/astronaut.png or the "
                  "repository's assets/astronaut.png)");
  sub->add_flag("--variants", o->variants,
                "also write bad/edge inputs (bad_truncated, bad_zero, bad_text, bad_noaudio, bad_noface, "
                "bad_twofaces, bad_silent, edge_30fps_44k_stereo .mp4 + variants.json) into DIR/variants");
  return [o]() {
    o->cfg.out_dir = o->out;
    o->cfg.portrait = o->portrait;
    synth::Synthesizer s(o->cfg);
    const auto& cfg = s.config();
    spdlog::info("portrait {} ({}x{} face crop), {} video(s) of {} s at {} fps, seed {}", cfg.portrait.string(),
                 cfg.size, cfg.size, o->count, cfg.seconds, cfg.fps, cfg.seed);
    {
      ProgressBar bar("synth", static_cast<uint64_t>(o->count), " videos");
      for (int i = 0; i < o->count; ++i) {
        const synth::SynthResult r = s.make(i);
        spdlog::debug("wrote {} ({} frames) and {}", r.video.string(), r.frames, r.truth.string());
        bar.advance();
      }
      bar.finish();
    }
    if (o->count > 0) spdlog::info("wrote {} video(s) with ground truth to {}", o->count, o->out);
    if (o->variants) {
      const auto dir = std::filesystem::path(o->out) / "variants";
      const auto files = s.make_variants(dir);
      spdlog::info("wrote {} bad/edge inputs to {} (described in variants.json)", files.size(), dir.string());
    }
    return 0;
  };
}

}  // namespace hallo::cli
