// Audio decoding: resampling accuracy, downmix, trimming, WAV writing, speech.
#include <gtest/gtest.h>

#include <fstream>

#include "media/audio_reader.h"
#include "media/probe.h"
#include "media/resample.h"
#include "media_test_util.h"

namespace hallo::media::test {
namespace {

// 1 s stereo at 44.1 kHz: left = a_l sin(2 pi f t), right = a_r sin(...).
std::vector<float> stereo_tone(double f, double a_l, double a_r, int rate, double seconds) {
  const auto l = sine(f, a_l, rate, seconds), r = sine(f, a_r, rate, seconds);
  std::vector<float> x(l.size() * 2);
  for (size_t i = 0; i < l.size(); ++i) x[2 * i] = l[i], x[2 * i + 1] = r[i];
  return x;
}

TEST(MediaAudio, StereoToneResampledTo16kMono) {
  TempDir dir;
  const fs::path wav = dir / "tone.wav";
  write_wav_interleaved(wav, stereo_tone(440.0, 0.5, 0.5, 44100, 1.0), 2, 44100);
  const MediaInfo info = probe(wav);
  EXPECT_EQ(info.audio_channels, 2);
  EXPECT_EQ(info.audio_sample_rate, 44100);
  EXPECT_FALSE(info.has_video);

  const auto x = read_audio(wav);
  EXPECT_NEAR(static_cast<double>(x.size()), 16000, 2);
  EXPECT_NEAR(zero_crossing_freq(x, 16000, 400, 15600), 440.0, 4.4);
  // Identical channels average to the same amplitude (not sqrt(2) louder).
  EXPECT_NEAR(rms(x, 400, 15600), 0.5 / std::sqrt(2.0), 0.02 * 0.5 / std::sqrt(2.0));
}

// WAV/FLAC take the libsndfile path; the same bytes under a name libsndfile is not
// tried for go through libav. Both must give the same samples.
TEST(MediaAudio, SndfilePathMatchesLibav) {
  TempDir dir;
  const fs::path wav = dir / "tone.wav", other = dir / "tone.bin";
  write_wav_interleaved(wav, stereo_tone(440.0, 0.6, 0.2, 44100, 1.0), 2, 44100);
  fs::copy_file(wav, other);
  for (int rate : {0, 44100, 16000}) {
    AudioDecodeOptions o;
    o.sample_rate = rate;
    o.start_s = 0.25;
    o.duration_s = 0.5;
    const auto a = decode_audio(wav, o), b = decode_audio(other, o);
    EXPECT_EQ(a.sample_rate, b.sample_rate);
    ASSERT_NEAR(double(a.samples.size()), double(b.samples.size()), 2) << rate;
    double max_diff = 0;
    for (size_t i = 0; i + 2 < std::min(a.samples.size(), b.samples.size()); ++i)
      max_diff = std::max(max_diff, double(std::abs(a.samples[i] - b.samples[i])));
    EXPECT_LT(max_diff, rate == 16000 ? 2e-2 : 1e-4) << rate;  // resamplers differ only by filter delay
  }
  // A .wav that is not audio falls back to libav, which names the problem.
  const fs::path fake = dir / "fake.wav";
  { std::ofstream(fake) << "not audio at all"; }
  try {
    read_audio(fake);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fake.string()), std::string::npos) << e.what();
  }
}

TEST(MediaAudio, DownmixIsTheChannelMean) {
  TempDir dir;
  const fs::path wav = dir / "left.wav";
  write_wav_interleaved(wav, stereo_tone(1000.0, 0.6, 0.0, 48000, 0.5), 2, 48000);
  AudioDecodeOptions o;
  o.sample_rate = 0;  // keep 48 kHz
  const auto a = decode_audio(wav, o);
  EXPECT_EQ(a.sample_rate, 48000);
  ASSERT_EQ(a.samples.size(), 24000u);
  EXPECT_NEAR(rms(a.samples), 0.3 / std::sqrt(2.0), 0.01);
}

TEST(MediaAudio, StartAndDuration) {
  TempDir dir;
  const fs::path wav = dir / "ramp.wav";
  // A ramp makes the position of each sample visible.
  std::vector<float> ramp(16000);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = static_cast<float>(i) / 16000.f - 0.5f;
  write_wav(wav, ramp, 16000);
  AudioDecodeOptions o;
  o.start_s = 0.25;
  o.duration_s = 0.5;
  const auto x = read_audio(wav, o);
  ASSERT_EQ(x.size(), 8000u);
  EXPECT_NEAR(x.front(), 4000 / 16000.f - 0.5f, 1e-3);
  EXPECT_NEAR(x.back(), 11999 / 16000.f - 0.5f, 1e-3);
}

TEST(MediaAudio, WavClipsAndRoundTrips) {
  TempDir dir;
  const fs::path wav = dir / "clip.wav";
  write_wav(wav, {2.0f, -2.0f, 0.5f, -0.25f, 0.0f}, 8000);
  AudioDecodeOptions o;
  o.sample_rate = 0;
  const auto a = decode_audio(wav, o);
  EXPECT_EQ(a.sample_rate, 8000);
  ASSERT_EQ(a.samples.size(), 5u);
  EXPECT_NEAR(a.samples[0], 1.0f, 1e-3);
  EXPECT_NEAR(a.samples[1], -1.0f, 1e-3);
  EXPECT_NEAR(a.samples[2], 0.5f, 1e-4);
  EXPECT_NEAR(a.samples[3], -0.25f, 1e-4);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
}

TEST(MediaAudio, ResampleFunction) {
  const auto x = sine(1000.0, 0.8, 48000, 1.0);
  const auto y = resample(x, 48000, 16000);
  EXPECT_NEAR(static_cast<double>(y.size()), 16000, 2);
  EXPECT_NEAR(zero_crossing_freq(y, 16000, 400, 15600), 1000.0, 10.0);
  EXPECT_NEAR(rms(y, 400, 15600), 0.8 / std::sqrt(2.0), 0.02);
  EXPECT_EQ(resample(x, 48000, 48000), x);
}

TEST(MediaAudio, EspeakSpeech) {
  if (!have_program("espeak-ng")) GTEST_SKIP() << "espeak-ng not installed";
  TempDir dir;
  const fs::path wav = dir / "speech.wav";
  ASSERT_EQ(run_command("espeak-ng -w '" + wav.string() + "' \"hello world, this is a test\""), 0);
  const MediaInfo info = probe(wav);
  ASSERT_TRUE(info.has_audio);
  ASSERT_GT(info.duration_s, 0.5);
  const auto x = read_audio(wav);
  EXPECT_NEAR(static_cast<double>(x.size()), info.duration_s * 16000, 0.01 * info.duration_s * 16000);
  EXPECT_GT(rms(x), 0.02);
  float peak = 0;
  for (float v : x) peak = std::max(peak, std::abs(v));
  EXPECT_GT(peak, 0.1f);
  EXPECT_LE(peak, 1.0f);
}

}  // namespace
}  // namespace hallo::media::test
