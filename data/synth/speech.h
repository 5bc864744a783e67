#pragma once
// Synthetic speech: espeak-ng sentences concatenated with short pauses into a
// mono track of an exact length. Deterministic for a given seed.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace hallo::synth {

struct SpeechOptions {
  std::string espeak = "espeak-ng";  // program name (PATH lookup) or path
  std::string voice = "en";
  int sample_rate = 16000;
  double seconds = 4.0;              // exact output length (round(seconds*rate) samples)
  float peak = 0.8f;                 // whole track scaled to this peak amplitude
};

struct SpeechTrack {
  std::vector<float> samples;        // mono, [-1, 1]
  int sample_rate = 0;
  std::vector<std::string> sentences;
  int speed_wpm = 0, pitch = 0;      // espeak-ng -s / -p
  std::string voice;
};

// The built-in sentence list the speech is drawn from.
const std::vector<std::string>& builtin_sentences();

// Runs `espeak -v voice -s speed -p pitch -w wav text` (no shell), reads the WAV
// and resamples it to sample_rate. Throws hallo::Error naming the program if it
// is missing or fails.
std::vector<float> speak(const std::string& text, const std::string& espeak, const std::string& voice,
                         int speed_wpm, int pitch, int sample_rate, const std::filesystem::path& tmp_dir);

// Sentences picked by seed (speed, pitch and pauses too), concatenated until
// opts.seconds is filled, then cut (with a 10 ms fade) to exactly that length.
SpeechTrack synthesize_speech(const SpeechOptions& opts, uint64_t seed, const std::filesystem::path& tmp_dir);

}  // namespace hallo::synth
