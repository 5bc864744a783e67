// VocalSeparator (STFT blocks -> ONNX via OpenCV DNN -> cross-fade -> iSTFT) on
// tiny 1x1-conv models exported by torch at test time, whose exact effect on the
// spectrogram is known: identity, x0.5, right channel muted, wrong output shape.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>

#include "audio_test_util.h"
#include "core/error.h"
#include "data/audio/audio_pipeline.h"
#include "data/audio/vocal_separator.h"
#include "media/audio_reader.h"

namespace hallo::audio {
namespace {

using testing::amplitude_at;
using testing::norm;
using testing::rel_error;
using testing::TempDir;
using testing::tones;

constexpr int kRate = 16000;

// The stand-in models, exported by torch once per build tree: every ctest
// process would otherwise pay python + torch start-up (~3 s) again. The cache
// folder is keyed by the generator script's text and filled by one atomic rename.
class TinySeparator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string script = std::string(HALLO_AUDIO_TEST_DIR) + "/make_tiny_separator.py";
    std::ifstream in(script);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    models_ = std::filesystem::path(HALLO_AUDIO_TEST_CACHE) / fmt::format("{:016x}", std::hash<std::string>{}(text));
    if (complete(models_)) return;
    TempDir tmp;
    const auto fresh = tmp.path() / "models";
    const std::string cmd = std::string(HALLO_AUDIO_TEST_PYTHON) + " " + script + " " + fresh.string() +
                            " 257 32 > /dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0 || !complete(fresh)) {
      models_.clear();
      return;
    }
    std::error_code ec;
    std::filesystem::create_directories(models_.parent_path(), ec);
    std::filesystem::rename(fresh, models_, ec);  // losing a race to another process is fine
    if (!complete(models_)) models_.clear();
  }

  static bool complete(const std::filesystem::path& d) {
    for (const char* m : {"identity", "half", "left_only", "wrong_shape"})
      if (!std::filesystem::exists(d / (std::string(m) + ".onnx"))) return false;
    return true;
  }

  void SetUp() override {
    if (models_.empty()) GTEST_SKIP() << HALLO_AUDIO_TEST_PYTHON << " with torch unavailable";
  }

  static std::string model(const std::string& name) { return (models_ / (name + ".onnx")).string(); }

  // The small geometry of the brief: 257 bins, 32-frame blocks at 16 kHz.
  static SeparatorConfig small(const std::string& name) {
    SeparatorConfig c;
    c.onnx = model(name);
    c.sample_rate = kRate;
    c.n_fft = 512;
    c.hop_length = 128;
    c.dim_f = 257;
    c.dim_t = 32;
    c.overlap = 0.5;
    return c;
  }

  static std::vector<float> run(const SeparatorConfig& c, const std::vector<float>& x) {
    VocalSeparator sep(c);
    return sep.separate(x);
  }

  // 1.5 s of 300 Hz + 1 kHz: 188 STFT frames, several blocks, a ragged last block.
  static std::vector<float> speechish() { return tones({{300, 0.4}, {1000, 0.25}}, 1.5, kRate); }

  static std::filesystem::path models_;
};
std::filesystem::path TinySeparator::models_;

TEST_F(TinySeparator, IdentityModelReconstructsTheInput) {
  const auto x = speechish();
  const auto y = run(small("identity"), x);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_LT(rel_error(y, x), 1e-3);
}

TEST_F(TinySeparator, OddLengthsAndShortInputsKeepTheirLength) {
  // Shorter than one block (dim_t frames) and a length that is not a multiple of the hop.
  for (size_t n : {1000u, 4097u}) {
    const auto x = tones({{440, 0.5}}, static_cast<double>(n) / kRate, kRate);
    const auto y = run(small("identity"), x);
    ASSERT_EQ(y.size(), n);
    EXPECT_LT(rel_error(y, x), 1e-3) << n << " samples";
  }
  EXPECT_TRUE(run(small("identity"), {}).empty());
  // Fewer samples than n_fft / 2 (reflect padding's limit): zero-padded for the analysis.
  for (size_t n : {1u, 100u, 256u}) {
    const auto x = tones({{440, 0.5}}, static_cast<double>(n) / kRate, kRate);
    EXPECT_EQ(run(small("identity"), x).size(), n) << n << " samples";
  }
}

TEST_F(TinySeparator, HalfModelHalvesTheAmplitude) {
  const auto x = speechish();
  const auto y = run(small("half"), x);
  EXPECT_LT(rel_error(y, x, 0.5), 1e-3);
}

TEST_F(TinySeparator, CompensateUndoesTheModelGain) {
  auto c = small("half");
  c.compensate = 2.0;
  const auto x = speechish();
  EXPECT_LT(rel_error(run(c, x), x), 1e-3);
}

TEST_F(TinySeparator, AccompanimentModelWithIdentityLeavesSilence) {
  // output_is_vocals=false: vocals = mix - model(mix) = mix - mix.
  auto c = small("identity");
  c.output_is_vocals = false;
  const auto x = speechish();
  const auto y = run(c, x);
  ASSERT_EQ(y.size(), x.size());
  EXPECT_LT(norm(y) / norm(x), 1e-3);
}

TEST_F(TinySeparator, MutedRightChannelHalvesTheMonoMix) {
  // Mono feeds L and R; the stereo output is averaged, so muting R halves the result.
  const auto x = speechish();
  EXPECT_LT(rel_error(run(small("left_only"), x), x, 0.5), 1e-3);
}

TEST_F(TinySeparator, DenoiseOfALinearModelIsTheModel) {
  // (model(x) - model(-x)) / 2 == model(x) for a linear model.
  auto c = small("half");
  c.denoise = true;
  const auto x = speechish();
  EXPECT_LT(rel_error(run(c, x), x, 0.5), 1e-3);
}

TEST_F(TinySeparator, OverlapDoesNotChangeAnIdentityModel) {
  const auto x = speechish();
  auto c0 = small("identity");
  c0.overlap = 0.0;
  auto c5 = small("identity");
  c5.overlap = 0.5;
  auto c75 = small("identity");
  c75.overlap = 0.75;
  const auto y0 = run(c0, x), y5 = run(c5, x), y75 = run(c75, x);
  EXPECT_LT(rel_error(y0, y5), 1e-4);
  EXPECT_LT(rel_error(y75, y5), 1e-4);
  EXPECT_LT(rel_error(y0, x), 1e-3);
}

TEST_F(TinySeparator, BinsAboveDimFAreRemoved) {
  // 512-point FFT at 16 kHz: 31.25 Hz per bin, dim_f 64 keeps 0..~2 kHz.
  auto c = small("identity");
  c.dim_f = 64;
  const auto low = tones({{300, 0.4}}, 1.5, kRate);
  const auto x = tones({{300, 0.4}, {5000, 0.3}}, 1.5, kRate);
  const auto y = run(c, x);
  EXPECT_NEAR(amplitude_at(x, 5000, kRate), 0.3, 0.01);  // the probe itself works
  EXPECT_LT(amplitude_at(y, 5000, kRate), 1e-3);
  EXPECT_NEAR(amplitude_at(y, 300, kRate), 0.4, 0.01);
  // Away from the ends: reflect padding at the edges spreads the cut tone over every bin.
  const std::vector<float> y_mid(y.begin() + c.n_fft, y.end() - c.n_fft);
  const std::vector<float> low_mid(low.begin() + c.n_fft, low.end() - c.n_fft);
  EXPECT_LT(rel_error(y_mid, low_mid), 1e-3);
}

// Noise-like wave (deterministic LCG) plus tones, so every mel band has energy
// and log-mel differences reflect the waveform, not the 1e-6 floor.
std::vector<float> broadband(double seconds, int rate) {
  auto w = tones({{300, 0.3}, {1200, 0.15}}, seconds, rate);
  uint32_t s = 12345;
  for (auto& v : w) {
    s = s * 1664525u + 1013904223u;
    v += 0.05f * (static_cast<float>(s >> 8) / 16777216.f - 0.5f);
  }
  return w;
}

TEST_F(TinySeparator, PipelineWithIdentitySeparatorKeepsTheFeatures) {
  TempDir tmp;
  const auto wav = tmp.path() / "mix.wav";
  media::write_wav(wav, broadband(1.2, kRate), kRate);
  AudioPipelineConfig plain;
  plain.features.extractor = "logmel";
  AudioPipelineConfig isolated = plain;
  isolated.separator = small("identity");
  const auto a = AudioPipeline(plain).from_file(wav);
  const auto b = AudioPipeline(isolated).from_file(wav);
  ASSERT_EQ(a.emb.sizes(), b.emb.sizes());
  EXPECT_EQ(a.audio_frames, b.audio_frames);
  EXPECT_LT((a.emb - b.emb).abs().max().item<float>(), 1e-2);

  // An accompaniment-style model with the identity isolates nothing: silence.
  isolated.separator->output_is_vocals = false;
  const auto speech = AudioPipeline(isolated).load_speech(wav);
  EXPECT_LT(norm(speech) / norm(AudioPipeline(plain).load_speech(wav)), 1e-3);
}

TEST_F(TinySeparator, PipelineSeparatesAtTheModelRateThenResamples) {
  // The model runs at 8 kHz; the extractor still gets 16 kHz of the same length.
  TempDir tmp;
  const auto wav = tmp.path() / "tone.wav";
  const auto x = tones({{300, 0.4}, {1000, 0.25}}, 1.0, kRate);
  media::write_wav(wav, x, kRate);
  AudioPipelineConfig c;
  c.features.extractor = "logmel";
  c.separator = small("half");
  c.separator->sample_rate = 8000;
  const auto speech = AudioPipeline(c).load_speech(wav);
  ASSERT_NEAR(static_cast<double>(speech.size()), static_cast<double>(x.size()), 2.0);
  EXPECT_NEAR(amplitude_at(speech, 300, kRate), 0.2, 0.01);
  EXPECT_NEAR(amplitude_at(speech, 1000, kRate), 0.125, 0.01);
}

TEST_F(TinySeparator, MissingModelIsNamed) {
  auto c = small("identity");
  TempDir tmp;
  c.onnx = (tmp.path() / "no_such_model.onnx").string();
  try {
    VocalSeparator sep(c);
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(c.onnx), std::string::npos) << e.what();
  }
}

TEST_F(TinySeparator, GarbageOnnxIsNamed) {
  TempDir tmp;
  auto c = small("identity");
  c.onnx = (tmp.path() / "garbage.onnx").string();
  std::string bytes;
  for (int i = 0; i < 4096; ++i) bytes.push_back(static_cast<char>((i * 7919 + 13) & 0xff));
  testing::write_text(c.onnx, bytes);
  try {
    VocalSeparator sep(c);
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(c.onnx), std::string::npos) << e.what();
  }
  // An empty file as well.
  testing::write_text(c.onnx, "");
  EXPECT_THROW(VocalSeparator{c}, Error);
}

TEST_F(TinySeparator, WrongOutputShapeIsNamed) {
  VocalSeparator sep(small("wrong_shape"));
  try {
    sep.separate(speechish());
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(model("wrong_shape")), std::string::npos) << msg;
    EXPECT_NE(msg.find("[1, 4, 257, 32]"), std::string::npos) << msg;
  }
}

TEST_F(TinySeparator, ConfigIsValidated) {
  auto c = small("identity");
  c.dim_f = 258;  // > n_fft / 2 + 1
  EXPECT_THROW(VocalSeparator{c}, Error);
  c = small("identity");
  c.overlap = 1.0;
  EXPECT_THROW(VocalSeparator{c}, Error);
  c = small("identity");
  c.onnx.clear();
  EXPECT_THROW(VocalSeparator{c}, Error);
}

}  // namespace
}  // namespace hallo::audio
