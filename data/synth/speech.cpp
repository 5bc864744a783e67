// espeak-ng sentences (run without a shell, see process.h) assembled into a
// fixed-length speech track.
#include "data/synth/speech.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/error.h"
#include "data/synth/process.h"
#include "data/synth/rng.h"
#include "media/audio_reader.h"

namespace hallo::synth {

namespace fs = std::filesystem;

const std::vector<std::string>& builtin_sentences() {
  static const std::vector<std::string> list = {
      "The quick brown fox jumps over the lazy dog.",
      "We choose to go to the moon in this decade.",
      "Please call Stella and ask her to bring these things with her from the store.",
      "A rainbow is a division of white light into many beautiful colors.",
      "The weather today is bright and clear, with a gentle breeze from the west.",
      "Every morning I walk along the river and watch the boats go by.",
      "She sells sea shells by the sea shore.",
      "Our mission is to explore, to learn, and to bring the knowledge home.",
      "Launch control confirms that all systems are ready for flight.",
      "Reading a good book on a rainy afternoon is one of life's small pleasures.",
      "The orbit is stable and the crew is in excellent spirits.",
      "Open the window and let the fresh air come in.",
      "Numbers like seven, twelve and ninety nine are easy to say.",
      "Thank you all for joining us today for this special broadcast.",
      "Measure twice and cut once, my grandfather used to say.",
      "How many miles is it from here to the nearest city?",
  };
  return list;
}

namespace {

// Unique per process and call, so parallel syntheses never share a temp file.
fs::path temp_wav(const fs::path& dir) {
  static std::atomic<uint64_t> counter{0};
  return dir / ("espeak-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".wav");
}

struct RemoveOnExit {
  fs::path p;
  ~RemoveOnExit() {
    std::error_code ec;
    fs::remove(p, ec);
  }
};

}  // namespace

std::vector<float> speak(const std::string& text, const std::string& espeak, const std::string& voice,
                         int speed_wpm, int pitch, int sample_rate, const fs::path& tmp_dir) {
  const fs::path wav = temp_wav(tmp_dir);
  RemoveOnExit cleanup{wav};
  const int rc = run_program({espeak, "-v", voice, "-s", std::to_string(speed_wpm), "-p", std::to_string(pitch),
                              "-w", wav.string(), text},
                             "install espeak-ng (apt-get install espeak-ng, or scripts/install-deps.sh)");
  if (rc != 0) fail_at(espeak, "exited with status {} while speaking \"{}\"", rc, text);
  if (!fs::exists(wav) || fs::file_size(wav) == 0) fail_at(espeak, "wrote no audio to {}", wav.string());
  media::AudioDecodeOptions o;
  o.sample_rate = sample_rate;
  return media::read_audio(wav, o);
}

SpeechTrack synthesize_speech(const SpeechOptions& opts, uint64_t seed, const fs::path& tmp_dir) {
  if (opts.seconds <= 0) fail("speech: seconds must be > 0 (got {})", opts.seconds);
  if (opts.sample_rate <= 0) fail("speech: sample rate must be > 0 (got {})", opts.sample_rate);
  Rng rng(seed);
  SpeechTrack t;
  t.sample_rate = opts.sample_rate;
  t.voice = opts.voice;
  t.speed_wpm = 140 + rng.below(51);  // 140..190 wpm: clear but not sluggish
  t.pitch = 30 + rng.below(41);       // 30..70 around espeak's default 50
  const size_t target = static_cast<size_t>(std::llround(opts.seconds * opts.sample_rate));
  const auto& pool = builtin_sentences();

  // A short lead-in silence, then sentence, pause, sentence, ... Pauses give
  // the loudness curve real closed-mouth stretches.
  t.samples.assign(static_cast<size_t>(rng.uniform(0.05, 0.25) * opts.sample_rate), 0.0f);
  int last = -1;
  while (t.samples.size() < target) {
    int k = rng.below(static_cast<int>(pool.size()));
    if (k == last) k = (k + 1) % static_cast<int>(pool.size());
    last = k;
    const auto speech = speak(pool[k], opts.espeak, opts.voice, t.speed_wpm, t.pitch, opts.sample_rate, tmp_dir);
    t.sentences.push_back(pool[k]);
    t.samples.insert(t.samples.end(), speech.begin(), speech.end());
    t.samples.insert(t.samples.end(), static_cast<size_t>(rng.uniform(0.15, 0.4) * opts.sample_rate), 0.0f);
  }
  t.samples.resize(target);

  // Fade the cut so the track does not end on a click.
  const size_t fade = std::min(target, static_cast<size_t>(opts.sample_rate / 100));
  for (size_t i = 0; i < fade; ++i) t.samples[target - 1 - i] *= static_cast<float>(i) / static_cast<float>(fade);
  float peak = 0;
  for (float s : t.samples) peak = std::max(peak, std::abs(s));
  if (peak > 0) {
    const float g = opts.peak / peak;
    for (float& s : t.samples) s *= g;
  }
  return t;
}

}  // namespace hallo::synth
