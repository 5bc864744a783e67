// AudioPipelineConfig::from_json (feature fields at top level, nested separator)
// and the decode -> features path of AudioPipeline with the weight-free extractor.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <functional>

#include "audio_test_util.h"
#include "core/error.h"
#include "data/audio/audio_pipeline.h"
#include "media/audio_reader.h"

namespace hallo::audio {
namespace {

using testing::TempDir;
using testing::message_of;
using testing::tones;

TEST(AudioPipelineConfig, ReadsFeaturesAndNestedSeparator) {
  const auto j = nlohmann::json::parse(R"({
    "extractor": "logmel", "fps": 30, "window_radius": 3, "clip_length": 16, "n_mels": 40,
    "separator": {"onnx": "/models/Kim_Vocal_2.onnx", "sample_rate": 22050, "n_fft": 4096,
                  "hop_length": 512, "dim_f": 1024, "dim_t": 128, "overlap": 0.25,
                  "compensate": 1.035, "output_is_vocals": false, "denoise": true}
  })");
  const auto c = AudioPipelineConfig::from_json(j, "audio.yaml");
  EXPECT_EQ(c.features.extractor, "logmel");
  EXPECT_DOUBLE_EQ(c.features.fps, 30.0);
  EXPECT_EQ(c.features.window_radius, 3);
  EXPECT_EQ(c.features.clip_length, 16);
  EXPECT_EQ(c.features.n_mels, 40);
  EXPECT_EQ(c.features.sample_rate, 16000);  // default kept
  ASSERT_TRUE(c.separator.has_value());
  const auto& s = *c.separator;
  EXPECT_EQ(s.onnx, "/models/Kim_Vocal_2.onnx");
  EXPECT_EQ(s.sample_rate, 22050);
  EXPECT_EQ(s.n_fft, 4096);
  EXPECT_EQ(s.hop_length, 512);
  EXPECT_EQ(s.dim_f, 1024);
  EXPECT_EQ(s.dim_t, 128);
  EXPECT_DOUBLE_EQ(s.overlap, 0.25);
  EXPECT_DOUBLE_EQ(s.compensate, 1.035);
  EXPECT_FALSE(s.output_is_vocals);
  EXPECT_TRUE(s.denoise);
}

TEST(AudioPipelineConfig, SeparatorDefaultsAreKimVocal2) {
  const auto c = AudioPipelineConfig::from_json(
      nlohmann::json::parse(R"({"extractor": "logmel", "separator": {"onnx": "m.onnx"}})"), "cfg");
  ASSERT_TRUE(c.separator.has_value());
  EXPECT_EQ(c.separator->sample_rate, 44100);
  EXPECT_EQ(c.separator->n_fft, 7680);
  EXPECT_EQ(c.separator->hop_length, 1024);
  EXPECT_EQ(c.separator->dim_f, 3072);
  EXPECT_EQ(c.separator->dim_t, 256);
  EXPECT_TRUE(c.separator->output_is_vocals);
}

TEST(AudioPipelineConfig, AbsentOrNullSeparatorMeansNone) {
  EXPECT_FALSE(AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "logmel"})"), "cfg")
                   .separator.has_value());
  EXPECT_FALSE(
      AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "logmel", "separator": null})"), "cfg")
          .separator.has_value());
}

TEST(AudioPipelineConfig, UnknownKeysAreRejectedByName) {
  std::string msg = message_of([] {
    AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "logmel", "frame_rate": 25})"),
                                   "my_audio.yaml");
  });
  EXPECT_NE(msg.find("my_audio.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("frame_rate"), std::string::npos) << msg;

  msg = message_of([] {
    AudioPipelineConfig::from_json(
        nlohmann::json::parse(R"({"extractor": "logmel", "separator": {"onnx": "m.onnx", "hop": 512}})"),
        "my_audio.yaml");
  });
  EXPECT_NE(msg.find("my_audio.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("separator"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hop'"), std::string::npos) << msg;
}

TEST(AudioPipelineConfig, BadValuesAreRejected) {
  // Wrong type, out-of-range separator geometry, wrong extractor, not an object.
  EXPECT_THROW(AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "logmel", "fps": "fast"})"),
                                              "cfg"),
               Error);
  EXPECT_THROW(AudioPipelineConfig::from_json(
                   nlohmann::json::parse(R"({"extractor": "logmel", "separator": {"n_fft": 512, "dim_f": 300}})"),
                   "cfg"),
               Error);
  EXPECT_THROW(AudioPipelineConfig::from_json(
                   nlohmann::json::parse(R"({"extractor": "logmel", "separator": {"overlap": 1.0}})"), "cfg"),
               Error);
  EXPECT_THROW(AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "mfcc"})"), "cfg"), Error);
  EXPECT_THROW(AudioPipelineConfig::from_json(nlohmann::json::parse(R"([1, 2])"), "cfg"), Error);
  const std::string msg = message_of([] {
    AudioPipelineConfig::from_json(nlohmann::json::parse(R"({"extractor": "wav2vec2"})"), "cfg");
  });
  EXPECT_NE(msg.find("wav2vec2_path"), std::string::npos) << msg;
}

TEST(AudioPipeline, FileAndSamplesGiveTheSameLogMelFeatures) {
  TempDir tmp;
  const auto wav = tmp.path() / "tone.wav";
  const auto wave = tones({{220, 0.3}, {1800, 0.2}}, 1.3, 16000);
  media::write_wav(wav, wave, 16000);

  AudioPipelineConfig c;
  c.features.extractor = "logmel";
  c.features.clip_length = 8;
  AudioPipeline pipe(c);
  const auto from_file = pipe.from_file(wav);
  EXPECT_EQ(from_file.audio_frames, 33);                                    // ceil(1.3 * 25)
  EXPECT_EQ(from_file.emb.sizes(), (std::vector<int64_t>{40, 1, 80}));  // padded to 5 x 8
  EXPECT_EQ(from_file.extractor_id, pipe.extractor().id());

  const auto speech = pipe.load_speech(wav);
  ASSERT_EQ(speech.size(), wave.size());
  EXPECT_LT(testing::rel_error(speech, wave), 1e-3);  // 16-bit PCM round trip
  const auto from_samples = pipe.from_samples(speech);
  EXPECT_TRUE(at::equal(from_file.emb, from_samples.emb));
}

TEST(AudioPipeline, MissingAndEmptyInputsAreNamed) {
  TempDir tmp;
  AudioPipelineConfig c;
  c.features.extractor = "logmel";
  AudioPipeline pipe(c);
  const auto missing = tmp.path() / "missing.wav";
  std::string msg = message_of([&] { pipe.from_file(missing); });
  EXPECT_NE(msg.find(missing.string()), std::string::npos) << msg;

  const auto text = tmp.path() / "notes.wav";
  testing::write_text(text, "these are not audio samples\n");
  msg = message_of([&] { pipe.from_file(text); });
  EXPECT_NE(msg.find(text.string()), std::string::npos) << msg;
}

TEST(AudioPipeline, SeparatorWithMissingModelFailsAtConstruction) {
  TempDir tmp;
  AudioPipelineConfig c;
  c.features.extractor = "logmel";
  c.separator = SeparatorConfig{};
  c.separator->onnx = (tmp.path() / "absent.onnx").string();
  const std::string msg = message_of([&] { AudioPipeline pipe(c); });
  EXPECT_NE(msg.find(c.separator->onnx), std::string::npos) << msg;
}

}  // namespace
}  // namespace hallo::audio
