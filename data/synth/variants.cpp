// Bad and edge-case inputs for the data-pipeline tests. Each is generated from
// the same portrait and speech machinery as the good clips, so the only thing
// wrong with a file is the thing its name says.
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <iterator>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/synth/process.h"
#include "data/synth/synth_impl.h"
#include "media/audio_reader.h"

namespace hallo::synth {

namespace fs = std::filesystem;

namespace {

// Clip indices for the variants' random streams, far from any --count.
constexpr uint64_t kVariantBase = 1u << 30;

struct TempFile {
  fs::path path;
  ~TempFile() {
    std::error_code ec;
    fs::remove(path, ec);
  }
};

fs::path temp_in(const fs::path& dir, const std::string& stem, const std::string& ext) {
  return dir / fmt::format(".{}-{}{}", stem, ::getpid(), ext);
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) fail_at(p.string(), "cannot read");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::vector<fs::path> Synthesizer::make_variants(const fs::path& dir) {
  Impl& m = *impl_;
  const SynthConfig& cfg = m.cfg;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) fail_at(dir.string(), "cannot create output directory");
  std::vector<fs::path> out;
  nlohmann::ordered_json manifest;
  auto done = [&](const std::string& name, const std::string& what) {
    out.push_back(dir / name);
    manifest[name] = what;
  };
  const int W = m.portrait.rgb.cols, H = m.portrait.rgb.rows;

  // A good clip, the source of the byte-level damage. VideoWriter puts the
  // index (moov) first; cameras and plain muxers put it last, where a cut-off
  // download loses it. Both layouts are cut, since they fail differently.
  const ClipPlan good = plan_clip(cfg, kVariantBase + 0, cfg.fps, cfg.sample_rate, m.portrait, dir);
  {
    TempFile faststart{temp_in(dir, "variant-good", ".mp4")};
    TempFile moov_last{temp_in(dir, "variant-good-moovlast", ".mp4")};
    m.write_clip(faststart.path, good, true);
    const int rc = run_program({"ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", faststart.path.string(), "-map",
                                "0", "-c", "copy", "-f", "mp4", moov_last.path.string()},
                               "install ffmpeg (apt-get install ffmpeg)");
    if (rc != 0) fail_at(moov_last.path.string(), "ffmpeg exited with status {} while remuxing", rc);
    const std::string a = read_bytes(moov_last.path), b = read_bytes(faststart.path);
    write_file_atomic(dir / "bad_truncated.mp4", a.substr(0, a.size() * 2 / 5));
    done("bad_truncated.mp4", "first 40% of the bytes of a good mp4 with its index at the end: probe fails");
    write_file_atomic(dir / "bad_truncated_faststart.mp4", b.substr(0, b.size() * 2 / 5));
    done("bad_truncated_faststart.mp4",
         "first 40% of the bytes of a good +faststart mp4: the header parses, decoding fails on missing data");
  }
  write_file_atomic(dir / "bad_zero.mp4", "");
  done("bad_zero.mp4", "0 bytes");
  write_file_atomic(dir / "bad_text.mp4", "This is not a video. It is a text file with an .mp4 name.\n");
  done("bad_text.mp4", "plain text named .mp4");

  m.write_clip(dir / "bad_noaudio.mp4", good, false);
  done("bad_noaudio.mp4", "good talking head without an audio stream");

  {  // The portrait blurred far past recognition, still moving, with speech.
    const ClipPlan p = plan_clip(cfg, kVariantBase + 1, cfg.fps, cfg.sample_rate, m.portrait, dir);
    cv::Mat blurred;
    cv::GaussianBlur(m.portrait.rgb, blurred, cv::Size(0, 0), W / 10.0);
    media::VideoWriter w(dir / "bad_noface.mp4", W, H, m.encode_options(p.fps));
    for (int i = 0; i < p.frames; ++i) w.write_rgb(p.head.apply(blurred, p.head_at[i]).data);
    w.set_audio(p.speech.samples, p.speech.sample_rate);
    w.close();
    done("bad_noface.mp4", "blurred background only, speech audio: no detectable face");
  }

  {  // Two portraits side by side, each mouth following its own speaker; the
     // audio is both voices mixed.
    const ClipPlan a = plan_clip(cfg, kVariantBase + 2, cfg.fps, cfg.sample_rate, m.portrait, dir);
    const ClipPlan b = plan_clip(cfg, kVariantBase + 3, cfg.fps, cfg.sample_rate, m.portrait, dir);
    media::VideoWriter w(dir / "bad_twofaces.mp4", 2 * W, H, m.encode_options(a.fps));
    cv::Mat both;
    for (int i = 0; i < a.frames; ++i) {
      cv::hconcat(render_frame(m.portrait, *m.rig, a, i), render_frame(m.portrait, *m.rig, b, i), both);
      w.write_rgb(both.data);
    }
    std::vector<float> mix(a.speech.samples.size());
    for (size_t k = 0; k < mix.size(); ++k) mix[k] = 0.5f * (a.speech.samples[k] + b.speech.samples[k]);
    w.set_audio(std::move(mix), a.speech.sample_rate);
    w.close();
    done("bad_twofaces.mp4", "two talking portraits side by side (width 2x): two faces per frame");
  }

  {
    const ClipPlan p = plan_clip(cfg, kVariantBase + 4, cfg.fps, cfg.sample_rate, m.portrait, dir, true);
    m.write_clip(dir / "bad_silent.mp4", p, true);
    done("bad_silent.mp4", "all-zero audio, mouth closed, head still moving");
  }

  {  // 30 fps with 44.1 kHz stereo. VideoWriter muxes mono audio only, so the
     // video is encoded here and the ffmpeg CLI adds a stereo AAC track.
    const ClipPlan p = plan_clip(cfg, kVariantBase + 5, 30.0, 44100, m.portrait, dir);
    TempFile video{temp_in(dir, "edge-video", ".mp4")};
    TempFile wav{temp_in(dir, "edge-audio", ".wav")};
    TempFile muxed{temp_in(dir, "edge-muxed", ".mp4")};
    m.write_clip(video.path, p, false);
    // Right channel: quieter and 0.5 ms late, so the channels really differ.
    const auto& s = p.speech.samples;
    std::vector<float> lr(2 * s.size());
    for (size_t k = 0; k < s.size(); ++k) {
      lr[2 * k] = s[k];
      lr[2 * k + 1] = k >= 22 ? 0.8f * s[k - 22] : 0.0f;
    }
    media::write_wav_interleaved(wav.path, lr, 2, 44100);
    const int rc = run_program({"ffmpeg", "-nostdin", "-y", "-loglevel", "error", "-i", video.path.string(), "-i",
                                wav.path.string(), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", "aac",
                                "-b:a", "128k", "-ar", "44100", "-ac", "2", "-movflags", "+faststart", "-f", "mp4",
                                muxed.path.string()},
                               "install ffmpeg (apt-get install ffmpeg)");
    if (rc != 0) fail_at(muxed.path.string(), "ffmpeg exited with status {} while muxing stereo audio", rc);
    fs::rename(muxed.path, dir / "edge_30fps_44k_stereo.mp4");
    done("edge_30fps_44k_stereo.mp4", "good talking head at 30 fps with 44.1 kHz stereo AAC: accept after resampling");
  }

  write_file_atomic(dir / "variants.json", manifest.dump(1) + "\n");
  return out;
}

}  // namespace hallo::synth
