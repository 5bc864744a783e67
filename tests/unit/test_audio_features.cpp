// wav2vec2 + Hallo's audio feature path, and the weight-free log-mel fallback.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/grad_mode.h>

#include <cmath>
#include <fstream>

#include "core/error.h"
#include "model/audio/audio_features.h"
#include "model/audio/logmel.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/wav2vec2/wav2vec2.h"
#include "tests/unit/test_util.h"

namespace hallo {
namespace {

using test::TempDir;

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

struct Wav2Vec2Golden {
  std::filesystem::path weights = test::golden_dir() / "wav2vec2.weights.safetensors";
  std::filesystem::path config = test::golden_dir() / "wav2vec2.config.json";
  std::filesystem::path io = test::golden_dir() / "wav2vec2.io.safetensors";
  bool present() const { return std::filesystem::exists(weights) && std::filesystem::exists(io); }
};

std::vector<float> to_vec(const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

TEST(AudioFeatures, VideoFramesMatchUpstreamCeil) {
  EXPECT_EQ(audio::video_frames_for(2900, 16000, 25), 5);    // 4.53 -> 5
  EXPECT_EQ(audio::video_frames_for(16000, 16000, 25), 25);  // exact
  EXPECT_EQ(audio::video_frames_for(16001, 16000, 25), 26);
  EXPECT_EQ(audio::video_frames_for(640, 16000, 25), 1);
}

TEST(AudioFeatures, WindowsClampAtBothEnds) {
  auto emb = at::arange(6, at::kFloat).view({6, 1, 1});  // frame i holds value i
  auto w = audio::audio_windows(emb, 2);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{6, 5, 1, 1}));
  auto a = w.view({6, 5});
  const float want0[] = {0, 0, 0, 1, 2}, want5[] = {3, 4, 5, 5, 5}, want2[] = {0, 1, 2, 3, 4};
  for (int j = 0; j < 5; ++j) {
    EXPECT_EQ(a[0][j].item<float>(), want0[j]);
    EXPECT_EQ(a[5][j].item<float>(), want5[j]);
    EXPECT_EQ(a[2][j].item<float>(), want2[j]);
  }
  EXPECT_EQ(audio::audio_windows(emb, 0).sizes(), (std::vector<int64_t>{6, 1, 1, 1}));
}

TEST(AudioFeatures, InterpolationKeepsEndpointsAligned) {
  // align_corners: first and last source frames map exactly onto first and last outputs.
  auto f = at::tensor({0.f, 10.f, 20.f}).view({1, 3, 1});
  auto g = audio::interpolate_frames(f, 5);
  EXPECT_TRUE(at::allclose(g.view({5}), at::tensor({0.f, 5.f, 10.f, 15.f, 20.f})));
}

TEST(AudioFeatures, NormaliseIsZeroMeanUnitVariance) {
  auto x = at::randn({4000}) * 0.3 + 0.7;
  auto y = audio::normalize_wave(x);
  EXPECT_NEAR(y.mean().item<double>(), 0.0, 1e-5);
  EXPECT_NEAR(y.pow(2).mean().item<double>(), 1.0, 1e-4);
}

// The whole Hallo path from the raw wave must reproduce the golden's normalised,
// padded input and its embeddings.
TEST(Wav2Vec2, HalloPathFromRawWaveMatchesGolden) {
  Wav2Vec2Golden g;
  if (!g.present()) GTEST_SKIP() << "wav2vec2 golden not present";
  auto io = io::StateDict::open(g.io);
  audio::AudioFeatureConfig c;
  c.extractor = "wav2vec2";
  c.wav2vec2_path = g.weights.string();
  c.wav2vec2_config = g.config.string();
  c.clip_length = 4;  // the harness's clip length
  auto ex = audio::make_audio_extractor(c);
  EXPECT_EQ(ex->layers(), 4);
  EXPECT_EQ(ex->dim(), 32);
  auto raw = to_vec(io.tensor("in.raw_wave"));
  auto f = ex->extract(raw);
  EXPECT_EQ(f.audio_frames, io.tensor("in.audio_length").item<int64_t>());
  auto want = io.tensor("out.audio_emb");
  ASSERT_EQ(f.emb.sizes(), want.sizes());
  EXPECT_LT(rel_err(f.emb, want), 1e-4);
  EXPECT_LT(rel_err(audio::audio_windows(f.emb, 2), io.tensor("out.audio_emb_windows")), 1e-4);
  // The normalised + padded wave itself.
  auto iv = io.tensor("in.input_values")[0];
  auto ours = at::constant_pad_nd(audio::normalize_wave(io.tensor("in.raw_wave")), {0, iv.size(0) - int64_t(raw.size())});
  EXPECT_LT(rel_err(ours, iv), 1e-5);

  c.layers = "last";
  auto last = audio::make_audio_extractor(c)->extract(raw);
  ASSERT_EQ(last.emb.size(1), 1);
  EXPECT_LT(rel_err(last.emb.select(1, 0), io.tensor("out.last_hidden_state")[0]), 1e-4);
  c.layers = "2,4";
  auto sel = audio::make_audio_extractor(c)->extract(raw);
  EXPECT_TRUE(at::equal(sel.emb.select(1, 1), last.emb.select(1, 0)));
  EXPECT_NE(sel.extractor_id, last.extractor_id);
  c.layers = "5";
  EXPECT_THROW(audio::make_audio_extractor(c), Error);
}

// Real checkpoints are Wav2Vec2ForCTC: `wav2vec2.` prefix, lm_head, and newer torch
// saves the positional conv's weight norm as a parametrization.
TEST(Wav2Vec2, LoadsCtcCheckpointLayoutStrictly) {
  Wav2Vec2Golden g;
  if (!g.present()) GTEST_SKIP() << "wav2vec2 golden not present";
  TempDir tmp;
  auto sd = io::StateDict::open(g.weights);
  std::vector<io::TensorRecord> recs;
  for (const auto& k : sd.keys()) {
    std::string name = "wav2vec2." + k;
    if (k == "encoder.pos_conv_embed.conv.weight_g") name = "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original0";
    if (k == "encoder.pos_conv_embed.conv.weight_v") name = "wav2vec2.encoder.pos_conv_embed.conv.parametrizations.weight.original1";
    recs.push_back(io::from_tensor(name, sd.tensor(k)));
  }
  recs.push_back(io::from_tensor("lm_head.weight", at::randn({30, 32})));
  recs.push_back(io::from_tensor("lm_head.bias", at::randn({30})));
  std::filesystem::create_directories(tmp / "ctc");
  io::write_safetensors(tmp / "ctc" / "model.safetensors", recs, {});
  std::filesystem::copy_file(g.config, tmp / "ctc" / "config.json");
  auto loaded = model::load_wav2vec2(tmp / "ctc");
  EXPECT_TRUE(loaded.report.ok()) << loaded.report.summary();
  auto ref = model::load_wav2vec2(g.weights, g.config);
  torch::NoGradGuard ng;
  auto x = at::randn({1, 3000});
  EXPECT_TRUE(at::allclose(loaded.model->extract_features(x), ref.model->extract_features(x)));
  auto f = ref.model->extract_features(x);
  EXPECT_TRUE(at::allclose(loaded.model->encode(f).back(), ref.model->encode(f).back(), 1e-5, 1e-6));

  // The extractor id names the checkpoint the same way with or without a trailing slash.
  audio::AudioFeatureConfig fc;
  fc.wav2vec2_path = (tmp / "ctc").string();
  const auto id1 = audio::make_audio_extractor(fc)->id();
  fc.wav2vec2_path += "/";
  EXPECT_EQ(audio::make_audio_extractor(fc)->id(), id1);
  EXPECT_EQ(id1.substr(id1.size() - 4), ":ctc");

  // A missing tensor is named.
  recs.erase(recs.begin());
  io::write_safetensors(tmp / "ctc" / "model.safetensors", recs, {});
  try {
    model::load_wav2vec2(tmp / "ctc");
    FAIL() << "expected a strict-load error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(model::wav2vec2_translate_key(sd.keys().empty() ? "" : "wav2vec2." + sd.keys()[0])),
              std::string::npos)
        << e.what();
  }
}

TEST(Wav2Vec2, ConfigRejectsUnsupportedVariantsByName) {
  nlohmann::json j = {{"model_type", "wav2vec2"}, {"feat_extract_norm", "layer"}};
  try {
    model::Wav2Vec2Config::from_json(j, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("feat_extract_norm"), std::string::npos);
  }
  j = {{"model_type", "hubert"}};
  EXPECT_THROW(model::Wav2Vec2Config::from_json(j, "cfg.json"), Error);
  // Without training-time masking HF has no masked_spec_embed; neither do we.
  j = {{"model_type", "wav2vec2"}, {"mask_time_prob", 0.0}, {"hidden_size", 32}, {"num_attention_heads", 4},
       {"intermediate_size", 64}, {"num_hidden_layers", 1}, {"num_conv_pos_embedding_groups", 4},
       {"num_conv_pos_embeddings", 8}, {"conv_dim", {16, 16}}, {"conv_kernel", {10, 3}}, {"conv_stride", {5, 2}}};
  auto no_mask = model::Wav2Vec2Config::from_json(j, "cfg.json");
  EXPECT_FALSE(no_mask.has_masked_spec_embed);
  EXPECT_EQ(model::Wav2Vec2Model(no_mask)->named_parameters().find("masked_spec_embed"), nullptr);
  EXPECT_TRUE(model::Wav2Vec2Config::base().has_masked_spec_embed);
  auto base = model::Wav2Vec2Config::base();
  EXPECT_EQ(base.total_stride(), 320);
  EXPECT_EQ(base.feature_frames(16000), 49);  // wav2vec2-base: 49 frames per second of 16 kHz audio
}

TEST(AudioFeatures, MissingWav2Vec2WeightsAreNamed) {
  audio::AudioFeatureConfig c;
  c.wav2vec2_path = "/nonexistent/wav2vec2";
  try {
    audio::make_audio_extractor(c);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/wav2vec2"), std::string::npos) << e.what();
  }
  c.wav2vec2_path.clear();
  EXPECT_THROW(audio::make_audio_extractor(c), Error);  // says to use logmel
}

TEST(LogMel, FilterbankPeaksAtTheRightBand) {
  auto fb = audio::mel_filterbank(16000, 1024, 40, 0, 0);
  ASSERT_EQ(fb.sizes(), (std::vector<int64_t>{40, 513}));
  // Every band has weight and bands are ordered by centre frequency.
  auto peak = fb.argmax(1);
  for (int m = 1; m < 40; ++m) EXPECT_GE(peak[m].item<int64_t>(), peak[m - 1].item<int64_t>());
  EXPECT_GT(fb.sum(1).min().item<float>(), 0.f);
}

TEST(LogMel, ToneAndSilenceFramesAlignWithVideo) {
  // 1 s of silence, then 1 s of a 1 kHz tone: frames 0..24 quiet, 25..49 loud.
  const int sr = 16000;
  std::vector<float> wave(2 * sr, 0.f);
  for (int i = sr; i < 2 * sr; ++i) wave[i] = 0.5f * std::sin(2 * M_PI * 1000.0 * i / sr);
  audio::AudioFeatureConfig c;
  c.extractor = "logmel";
  c.n_mels = 40;
  auto ex = audio::make_audio_extractor(c);
  auto f = ex->extract(wave);
  ASSERT_EQ(f.emb.sizes(), (std::vector<int64_t>{50, 1, 40}));
  EXPECT_EQ(f.audio_frames, 50);
  auto energy = f.emb.select(1, 0).amax(1);  // [50]
  EXPECT_LT(energy[10].item<float>(), energy[40].item<float>() - 10);
  // The frame straddling the onset is in between; frames well inside each part are flat.
  EXPECT_NEAR(energy[5].item<float>(), energy[15].item<float>(), 1e-3);
  EXPECT_NEAR(energy[35].item<float>(), energy[45].item<float>(), 0.1);
  // The loudest band holds 1 kHz.
  const int64_t band = f.emb[40][0].argmax().item<int64_t>();
  auto fb = audio::mel_filterbank(sr, 2048, 40, 0, 0);
  const double peak_hz = fb[band].argmax().item<int64_t>() * double(sr) / 2048;
  EXPECT_NEAR(peak_hz, 1000.0, 150.0);
  EXPECT_EQ(f.extractor_id, ex->id());
  EXPECT_NE(f.extractor_id.find("logmel"), std::string::npos);

  // clip_length pads N up and keeps audio_frames.
  c.clip_length = 16;
  auto p = audio::make_audio_extractor(c)->extract(wave);
  EXPECT_EQ(p.emb.size(0), 64);
  EXPECT_EQ(p.audio_frames, 50);
}

}  // namespace
}  // namespace hallo
