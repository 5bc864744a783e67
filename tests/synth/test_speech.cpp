// espeak-ng speech tracks: exact length, deterministic, clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "data/synth/loudness.h"
#include "data/synth/speech.h"
#include "synth_test_util.h"

namespace hallo::synth {
namespace {

bool in_builtin_list(const std::string& s) {
  const auto& l = builtin_sentences();
  return std::find(l.begin(), l.end(), s) != l.end();
}

TEST(Speech, ExactLengthPeakAndRealSpeech) {
  testing::TempDir tmp;
  SpeechOptions o;
  o.seconds = 1.7;
  const SpeechTrack t = synthesize_speech(o, 5, tmp.path());
  ASSERT_EQ(t.samples.size(), 27200u);  // 1.7 s * 16 kHz
  EXPECT_EQ(t.sample_rate, 16000);
  float peak = 0;
  for (float s : t.samples) peak = std::max(peak, std::abs(s));
  EXPECT_NEAR(peak, o.peak, 1e-4);
  ASSERT_FALSE(t.sentences.empty());
  for (const auto& s : t.sentences) EXPECT_TRUE(in_builtin_list(s)) << s;
  EXPECT_GE(t.speed_wpm, 140);
  EXPECT_LE(t.speed_wpm, 190);
  // Speech has loud frames and (lead-in / pauses) quiet ones.
  const auto rms = frame_rms(t.samples, 16000, 25, 42);
  EXPECT_GT(*std::max_element(rms.begin(), rms.end()), 0.05f);
  EXPECT_LT(rms.front(), 0.01f);  // the lead-in silence
  // No temp WAVs are left behind.
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(Speech, DeterministicPerSeed) {
  testing::TempDir tmp;
  SpeechOptions o;
  o.seconds = 1.0;
  const auto a = synthesize_speech(o, 9, tmp.path());
  const auto b = synthesize_speech(o, 9, tmp.path());
  const auto c = synthesize_speech(o, 10, tmp.path());
  EXPECT_EQ(a.samples, b.samples);
  EXPECT_EQ(a.sentences, b.sentences);
  EXPECT_NE(a.samples, c.samples);
}

TEST(Speech, RateFollowsTheRequest) {
  testing::TempDir tmp;
  const auto s16 = speak("Hello there.", "espeak-ng", "en", 170, 50, 16000, tmp.path());
  const auto s44 = speak("Hello there.", "espeak-ng", "en", 170, 50, 44100, tmp.path());
  ASSERT_GT(s16.size(), 8000u);  // at least half a second
  EXPECT_NEAR(double(s44.size()) / double(s16.size()), 44100.0 / 16000.0, 0.01);
}

TEST(Speech, MissingProgramIsAnErrorNamingIt) {
  testing::TempDir tmp;
  SpeechOptions o;
  o.espeak = (tmp.path() / "no-espeak-here").string();
  try {
    synthesize_speech(o, 1, tmp.path());
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(o.espeak), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("espeak-ng"), std::string::npos) << e.what();
  }
  o.espeak = "false";  // exists, fails
  EXPECT_THROW(synthesize_speech(o, 1, tmp.path()), Error);
  o.espeak = "espeak-ng";
  o.seconds = 0;
  EXPECT_THROW(synthesize_speech(o, 1, tmp.path()), Error);
}

}  // namespace
}  // namespace hallo::synth
