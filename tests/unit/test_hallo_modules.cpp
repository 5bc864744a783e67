// Hallo's FaceLocator, ImageProjModel and AudioProjModel: upstream goldens through
// the runners, shapes at sizes the goldens do not cover, upstream key names,
// config errors.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/hallo/audio_proj.h"
#include "model/hallo/face_locator.h"
#include "model/hallo/image_proj.h"
#include "test_util.h"
#include "tools/golden/golden.h"

using namespace hallo;
using test::expect_error;
using Sizes = std::vector<int64_t>;

namespace {

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

std::map<std::string, Sizes> param_shapes(torch::nn::Module& m) {
  std::map<std::string, Sizes> r;
  for (const auto& p : m.named_parameters(true)) r[p.key()] = p.value().sizes().vec();
  return r;
}

// Runs one golden through its registered runner (hooks on); every golden out.*
// and hook.* tensor must be produced within 1e-4 relative. Returns the outputs.
golden::Outputs check_golden(const std::string& name) {
  auto c = golden::load_case(test::golden_dir(), name);
  c.want_hooks = true;
  const auto& runner = golden::find_runner(c);
  auto out = runner.run(c);
  int compared = 0;
  for (const auto& [k, want] : c.io) {
    if (k.rfind("out.", 0) != 0 && k.rfind("hook.", 0) != 0) continue;
    EXPECT_TRUE(out.count(k)) << name << ": " << k << " not produced";
    if (!out.count(k)) continue;
    EXPECT_EQ(out.at(k).sizes(), want.sizes()) << name << ": " << k;
    if (out.at(k).sizes() != want.sizes()) continue;
    const double rel = rel_err(out.at(k).to(at::kDouble), want.to(at::kDouble));
    EXPECT_LE(rel, 1e-4) << name << ": " << k;
    ++compared;
  }
  EXPECT_GT(compared, 0) << name;
  return out;
}

bool have_golden(const std::string& name) {
  return std::filesystem::exists(test::golden_dir() / (name + ".io.safetensors")) &&
         std::filesystem::exists(test::golden_dir() / (name + ".weights.safetensors"));
}

// LayerNorm over the last dim with eps 1e-5 (biased variance), written out.
at::Tensor layer_norm_ref(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  auto mu = x.mean(at::IntArrayRef{-1}, /*keepdim=*/true);
  auto var = (x - mu).pow(2).mean(at::IntArrayRef{-1}, /*keepdim=*/true);
  return (x - mu) / at::sqrt(var + 1e-5) * w + b;
}

void randomize(torch::nn::Module& m, uint64_t seed) {
  at::manual_seed(seed);
  c10::InferenceMode im;
  for (auto& p : m.parameters()) p.copy_(at::randn_like(p) * 0.2);
}

}  // namespace

// ---------------------------------------------------------------- goldens

TEST(HalloGolden, FaceLocatorMatchesUpstream) {
  if (!have_golden("hallo_face_locator")) GTEST_SKIP() << "no hallo_face_locator golden";
  auto out = check_golden("hallo_face_locator");
  // Hooks: one per conv, 5-D, the last one is the output itself.
  EXPECT_EQ(out.size(), 1u + 1u + 6u + 1u);
  for (const char* k : {"hook.conv_in", "hook.blocks.0", "hook.blocks.5", "hook.conv_out"}) EXPECT_TRUE(out.count(k)) << k;
  EXPECT_EQ(out.at("hook.blocks.1").sizes(), (Sizes{1, 32, 4, 64, 64}));
  EXPECT_TRUE(at::equal(out.at("hook.conv_out"), out.at("out.embedding")));
}

TEST(HalloGolden, ImageProjMatchesUpstream) {
  if (!have_golden("hallo_image_proj")) GTEST_SKIP() << "no hallo_image_proj golden";
  check_golden("hallo_image_proj");
}

TEST(HalloGolden, AudioProjMatchesUpstream) {
  if (!have_golden("hallo_audio_proj")) GTEST_SKIP() << "no hallo_audio_proj golden";
  check_golden("hallo_audio_proj");
}

// ---------------------------------------------------------------- FaceLocator

TEST(FaceLocator, HalloPresetHasUpstreamKeysAndShapes) {
  model::FaceLocator m(model::FaceLocatorConfig::hallo());
  auto p = param_shapes(*m);
  EXPECT_EQ(p.size(), 16u);
  EXPECT_EQ(p.at("conv_in.weight"), (Sizes{16, 3, 3, 3}));
  EXPECT_EQ(p.at("blocks.0.weight"), (Sizes{16, 16, 3, 3}));
  EXPECT_EQ(p.at("blocks.1.weight"), (Sizes{32, 16, 3, 3}));
  EXPECT_EQ(p.at("blocks.5.weight"), (Sizes{128, 64, 3, 3}));
  EXPECT_EQ(p.at("blocks.5.bias"), (Sizes{128}));
  EXPECT_EQ(p.at("conv_out.weight"), (Sizes{320, 128, 3, 3}));
  EXPECT_EQ(m->config().downscale_factor(), 8);
}

TEST(FaceLocator, ArbitraryFramesAndSizesGiveEighthResolution) {
  model::FaceLocatorConfig cfg;
  cfg.conditioning_embedding_channels = 12;
  cfg.block_out_channels = {4, 8, 8, 16};
  model::FaceLocator m(cfg);
  randomize(*m, 1);
  c10::InferenceMode im;
  EXPECT_EQ(m->forward(at::randn({2, 3, 3, 64, 48})).sizes(), (Sizes{2, 12, 3, 8, 6}));
  // stride-2 convs with padding 1 round up: 65 -> 33 -> 17 -> 9, 47 -> 24 -> 12 -> 6
  EXPECT_EQ(m->forward(at::randn({1, 3, 2, 65, 47})).sizes(), (Sizes{1, 12, 2, 9, 6}));
}

TEST(FaceLocator, FramesAreIndependentAndMatchPlainConvStack) {
  model::FaceLocatorConfig cfg;
  cfg.conditioning_embedding_channels = 6;
  cfg.block_out_channels = {4, 8, 8};
  model::FaceLocator m(cfg);
  randomize(*m, 2);
  c10::InferenceMode im;
  auto x = at::randn({2, 3, 3, 16, 24});  // [B, C, F, H, W]
  std::map<std::string, at::Tensor> hooks;
  auto y = m->forward(x, &hooks);
  ASSERT_EQ(y.sizes(), (Sizes{2, 6, 3, 4, 6}));
  EXPECT_EQ(hooks.size(), 6u);  // conv_in, blocks.0-3, conv_out
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t f = 0; f < 3; ++f) {
      auto h = x.select(0, b).select(1, f).unsqueeze(0);  // [1, C, H, W]
      h = at::silu(m->conv_in->forward(h));
      for (size_t i = 0; i < m->blocks->size(); ++i)
        h = at::silu(m->blocks->ptr<torch::nn::Conv2dImpl>(i)->forward(h));
      h = m->conv_out->forward(h)[0];  // [Cout, h, w]
      EXPECT_LE(rel_err(y.select(0, b).select(1, f), h), 1e-6) << b << "," << f;
    }
}

TEST(FaceLocator, RejectsNonVideoInputAndWrongChannels) {
  model::FaceLocator m(model::FaceLocatorConfig::hallo());
  c10::InferenceMode im;
  expect_error([&] { m->forward(at::zeros({1, 3, 64, 64})); }, {"FaceLocator", "[B, C, F, H, W]"});
  expect_error([&] { m->forward(at::zeros({1, 1, 2, 64, 64})); }, {"FaceLocator", "conditioning_channels"});
}

TEST(FaceLocator, ConfigErrorsNameFileAndField) {
  const std::string where = "fl/config.json";
  auto j = nlohmann::json::parse(R"({"_class_name": "FaceLocator", "conditioning_embedding_channels": 32,
                                     "block_out_channels": [16, 32, 64, 128], "_harness": {"x": 1}})");
  auto c = model::FaceLocatorConfig::from_json(j, where);
  EXPECT_EQ(c.conditioning_embedding_channels, 32);
  EXPECT_EQ(c.conditioning_channels, 3);  // upstream default
  auto missing = j;
  missing.erase("conditioning_embedding_channels");
  expect_error([&] { model::FaceLocatorConfig::from_json(missing, where); }, {where, "conditioning_embedding_channels"});
  auto empty = j;
  empty["block_out_channels"] = nlohmann::json::array();
  expect_error([&] { model::FaceLocatorConfig::from_json(empty, where); }, {where, "block_out_channels"});
  auto typed = j;
  typed["block_out_channels"] = "16,32";
  expect_error([&] { model::FaceLocatorConfig::from_json(typed, where); }, {where, "block_out_channels"});
  auto neg = j;
  neg["conditioning_channels"] = 0;
  expect_error([&] { model::FaceLocatorConfig::from_json(neg, where); }, {where, "conditioning_channels"});
  auto unknown = j;
  unknown["block_out_channel"] = 3;
  expect_error([&] { model::FaceLocatorConfig::from_json(unknown, where); }, {where, "block_out_channel"});
  auto cls = j;
  cls["_class_name"] = "AudioProjModel";
  expect_error([&] { model::FaceLocatorConfig::from_json(cls, where); }, {where, "_class_name"});
}

// ---------------------------------------------------------------- ImageProj

TEST(ImageProj, HalloPresetKeysShapesAndValues) {
  model::ImageProjModel m(model::ImageProjConfig::hallo());
  auto p = param_shapes(*m);
  EXPECT_EQ(p.size(), 4u);
  EXPECT_EQ(p.at("proj.weight"), (Sizes{4 * 768, 512}));
  EXPECT_EQ(p.at("proj.bias"), (Sizes{4 * 768}));
  EXPECT_EQ(p.at("norm.weight"), (Sizes{768}));
  EXPECT_EQ(p.at("norm.bias"), (Sizes{768}));
  randomize(*m, 3);
  c10::InferenceMode im;
  auto x = at::randn({3, 512});
  auto y = m->forward(x);
  ASSERT_EQ(y.sizes(), (Sizes{3, 4, 768}));
  // Each token is LayerNorm(eps 1e-5) of its slice of the linear output.
  auto lin = at::addmm(m->proj->bias, x, m->proj->weight.t()).reshape({3, 4, 768});
  auto ref = layer_norm_ref(lin, m->norm->weight, m->norm->bias);
  EXPECT_LE(rel_err(y, ref), 1e-5);
  // The CFG uncond tokens: proj(0) is the normalised bias.
  auto u = m->forward(at::zeros({1, 512}));
  auto b = m->proj->bias.reshape({1, 4, 768});
  auto uref = layer_norm_ref(b, m->norm->weight, m->norm->bias);
  EXPECT_LE(rel_err(u, uref), 1e-5);
}

TEST(ImageProj, LeadingDimsFlattenLikeUpstreamReshape) {
  model::ImageProjConfig cfg;
  cfg.cross_attention_dim = 8;
  cfg.clip_embeddings_dim = 16;
  cfg.clip_extra_context_tokens = 3;
  model::ImageProjModel m(cfg);
  randomize(*m, 4);
  c10::InferenceMode im;
  auto x = at::randn({2, 5, 16});
  auto y = m->forward(x);
  ASSERT_EQ(y.sizes(), (Sizes{10, 3, 8}));
  EXPECT_TRUE(at::allclose(y.slice(0, 5, 6), m->forward(x.select(0, 1).slice(0, 0, 1))));
  expect_error([&] { m->forward(at::zeros({2, 15})); }, {"ImageProjModel", "[B, 16]"});
}

TEST(ImageProj, ConfigDefaultsAndErrors) {
  const std::string where = "ip/config.json";
  auto d = model::ImageProjConfig::from_json(nlohmann::json::object(), where);
  EXPECT_EQ(d.cross_attention_dim, 1024);  // upstream constructor defaults
  EXPECT_EQ(d.clip_embeddings_dim, 1024);
  EXPECT_EQ(d.clip_extra_context_tokens, 4);
  auto c = model::ImageProjConfig::from_json(
      nlohmann::json::parse(R"({"cross_attention_dim": 40, "clip_embeddings_dim": 512, "clip_extra_context_tokens": 4})"),
      where);
  EXPECT_EQ(c.cross_attention_dim, 40);
  expect_error([&] { model::ImageProjConfig::from_json(nlohmann::json::parse(R"({"cross_attention_dim": -1})"), where); },
               {where, "cross_attention_dim"});
  expect_error(
      [&] { model::ImageProjConfig::from_json(nlohmann::json::parse(R"({"clip_extra_context_tokens": 2.5})"), where); },
      {where, "clip_extra_context_tokens"});
}

// ---------------------------------------------------------------- AudioProj

TEST(AudioProj, HalloPresetKeysAndShapes) {
  model::AudioProjModel m(model::AudioProjConfig::hallo());
  auto p = param_shapes(*m);
  EXPECT_EQ(p.size(), 8u);
  EXPECT_EQ(p.at("proj1.weight"), (Sizes{512, 5 * 12 * 768}));
  EXPECT_EQ(p.at("proj2.weight"), (Sizes{512, 512}));
  EXPECT_EQ(p.at("proj3.weight"), (Sizes{32 * 768, 512}));
  EXPECT_EQ(p.at("proj3.bias"), (Sizes{32 * 768}));
  EXPECT_EQ(p.at("norm.weight"), (Sizes{768}));
}

TEST(AudioProj, AnyFrameCountFramesIndependent) {
  model::AudioProjConfig cfg;
  cfg.seq_len = 5;
  cfg.blocks = 3;
  cfg.channels = 8;
  cfg.intermediate_dim = 16;
  cfg.output_dim = 12;
  cfg.context_tokens = 6;
  model::AudioProjModel m(cfg);
  randomize(*m, 5);
  c10::InferenceMode im;
  auto x = at::randn({2, 7, 5, 3, 8});
  auto y = m->forward(x);
  ASSERT_EQ(y.sizes(), (Sizes{2, 7, 6, 12}));
  // A shorter clip (the last one of a long audio) gives the same per-frame tokens.
  auto part = m->forward(x.slice(1, 2, 5));
  ASSERT_EQ(part.sizes(), (Sizes{2, 3, 6, 12}));
  EXPECT_LE(rel_err(part, y.slice(1, 2, 5)), 1e-6);
  // Non-contiguous input (upstream's .view would refuse it) gives the same values.
  auto xt = x.transpose(0, 1).contiguous().transpose(0, 1);
  EXPECT_FALSE(xt.is_contiguous());
  EXPECT_TRUE(at::equal(m->forward(xt), y));
  // Per-token LayerNorm: zero mean over output_dim when the affine part is identity.
  {
    c10::InferenceMode inner;
    m->norm->weight.fill_(1);
    m->norm->bias.zero_();
  }
  EXPECT_LT(m->forward(x).mean(-1).abs().max().item<double>(), 1e-5);
  expect_error([&] { m->forward(at::zeros({2, 7, 4, 3, 8})); }, {"AudioProjModel", "seq_len"});
  expect_error([&] { m->forward(at::zeros({7, 5, 3, 8})); }, {"AudioProjModel", "[B, F, 5, 3, 8]"});
}

TEST(AudioProj, ConfigErrorsNameFileAndField) {
  const std::string where = "ap/config.json";
  auto c = model::AudioProjConfig::from_json(nlohmann::json::parse(R"({"_class_name": "AudioProjModel", "blocks": 4})"), where);
  EXPECT_EQ(c.blocks, 4);
  EXPECT_EQ(c.seq_len, 5);
  EXPECT_EQ(c.context_tokens, 32);
  EXPECT_EQ(c.input_dim(), 5 * 4 * 768);
  for (const char* field : {"seq_len", "blocks", "channels", "intermediate_dim", "output_dim", "context_tokens"}) {
    nlohmann::json j{{field, 0}};
    expect_error([&] { model::AudioProjConfig::from_json(j, where); }, {where, std::string("'") + field + "'"});
  }
  expect_error([&] { model::AudioProjConfig::from_json(nlohmann::json::parse(R"({"channels": "768"})"), where); },
               {where, "channels"});
  expect_error([&] { model::AudioProjConfig::from_json(nlohmann::json::parse(R"({"context_token": 8})"), where); },
               {where, "context_token"});
}
