#pragma once
// Synthetic talking-head videos anyone can regenerate: a portrait whose mouth
// follows espeak-ng speech loudness, with slight head motion, written as
// H.264 + AAC mp4 plus a JSON ground truth. Deterministic given the seed.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "data/synth/head_motion.h"
#include "data/synth/loudness.h"
#include "data/synth/mouth_rig.h"

namespace hallo::synth {

struct SynthConfig {
  std::filesystem::path out_dir = ".";
  double seconds = 4.0;
  int size = 512;                    // output frames are size x size
  double fps = 25.0;
  int sample_rate = 16000;           // audio track rate (16000 or 44100)
  uint64_t seed = 0;
  std::filesystem::path portrait;    // empty: default_portrait_path()
  double crop_scale = 2.2;           // crop side / face box side; <= 0: whole image
  std::string espeak = "espeak-ng";
  std::string voice = "en";
  std::string shape_predictor;       // empty: hallo_face's default dlib .dat
  MouthRigOptions mouth;
  MouthCurveOptions loudness;
  HeadMotionOptions head;
  int crf = 18;
  std::string preset = "fast";
};

struct SynthResult {
  std::filesystem::path video, truth;
  int frames = 0;
  double seconds = 0;
};

// "synth_0007" for index 7.
std::string clip_name(int index);

// Loads the portrait and the landmark model once; make() can then be called
// for many indices. Not thread-safe (one per thread).
class Synthesizer {
 public:
  explicit Synthesizer(SynthConfig cfg);
  ~Synthesizer();
  Synthesizer(Synthesizer&&) noexcept;
  Synthesizer& operator=(Synthesizer&&) noexcept;

  // Writes out_dir/synth_XXXX.mp4 and .json for video `index`; the speech,
  // head motion and everything else random come from (seed, index).
  SynthResult make(int index);
  // Writes the bad/edge inputs (see make_variants) into `dir`; returns their paths.
  std::vector<std::filesystem::path> make_variants(const std::filesystem::path& dir);

  const SynthConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

SynthResult make_talking_head(const SynthConfig& cfg, int index);

// Inputs for the data-pipeline tests, named by what they are:
//   bad_truncated.mp4 (first 40% of a good mp4 whose index is at the end: no
//   header), bad_truncated_faststart.mp4 (same cut of a +faststart mp4: header
//   fine, data missing), bad_zero.mp4 (empty),
//   bad_text.mp4 (text), bad_noaudio.mp4 (no audio stream),
//   bad_noface.mp4 (portrait blurred beyond recognition), bad_twofaces.mp4
//   (two talking portraits side by side), bad_silent.mp4 (all-zero audio,
//   mouth closed), edge_30fps_44k_stereo.mp4 (30 fps, 44.1 kHz stereo AAC;
//   stereo is muxed by the ffmpeg CLI because VideoWriter writes mono), and
//   variants.json describing each. Needs the ffmpeg CLI.
std::vector<std::filesystem::path> make_variants(const SynthConfig& cfg, const std::filesystem::path& dir);

}  // namespace hallo::synth
