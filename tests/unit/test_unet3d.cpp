// Hallo denoising UNet3D: golden (with hooks), key set, the plain-block motion
// quirk switch, and shapes at other frame counts / non-square latents.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "model/hallo/unet_3d.h"
#include "model/io/hf_config.h"
#include "model/io/state_dict.h"
#include "model/nn/loader.h"
#include "test_util.h"
#include "tools/golden/golden.h"

namespace hallo {

namespace {

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

bool have_golden() { return std::filesystem::exists(test::golden_dir() / "hallo_unet3d.io.safetensors"); }

// Random inputs for the tiny config: B=2 (CFG halves), F frames, HxW latents.
struct Inputs {
  at::Tensor sample, timestep, context, face, audio, scale;
  model::AudioMasks masks;
};

Inputs make_inputs(const model::UNet3DConfig& c, int64_t f, int64_t h, int64_t w) {
  Inputs in;
  const int64_t b = 2;
  in.sample = at::randn({b, c.base.in_channels, f, h, w});
  in.timestep = at::tensor(int64_t{500});
  in.context = at::randn({b, 4, c.base.cross_attention_dim});
  in.face = at::randn({b, c.base.block_out_channels[0], f, h, w}) * 0.1;
  in.audio = at::randn({b, f, 8, c.audio_attention_dim});
  in.scale = at::tensor({1.0f, 0.8f, 1.2f});
  for (int64_t l = 0; l < 4; ++l) {
    const int64_t hw = ((h + (1 << l) - 1) >> l) * ((w + (1 << l) - 1) >> l);
    in.masks.full.push_back(at::rand({b * f, hw}));
    in.masks.face.push_back(at::rand({b * f, hw}));
    in.masks.lip.push_back(at::rand({b * f, hw}));
  }
  return in;
}

at::Tensor run(model::UNet3DConditionModel& m, const Inputs& in, const model::ReferenceBank* bank) {
  torch::NoGradGuard ng;
  return m->forward(in.sample, in.timestep, in.context, in.face, in.masks, in.audio, in.scale, bank);
}

}  // namespace

TEST(UNet3D, GoldenOutputAndEveryHookMatch) {
  if (!have_golden()) GTEST_SKIP() << "no ../shared/golden";
  auto c = golden::load_case(test::golden_dir(), "hallo_unet3d");
  c.want_hooks = true;
  auto out = golden::run_unet3d(c);
  int hooks = 0;
  for (const auto& [k, v] : c.io) {
    if (k.rfind("hook.", 0) != 0) continue;
    ASSERT_TRUE(out.count(k)) << k;
    EXPECT_LT(rel_err(out.at(k), v), 1e-4) << k;
    ++hooks;
  }
  EXPECT_EQ(hooks, 25);
  EXPECT_LT(rel_err(out.at("out.sample"), c.io.at("out.sample")), 1e-4);
}

TEST(UNet3D, KeySetEqualsGoldenWeights) {
  if (!have_golden()) GTEST_SKIP() << "no ../shared/golden";
  const auto dir = test::golden_dir();
  auto cfg = model::UNet3DConfig::from_json(io::load_json_file(dir / "hallo_unet3d.config.json"), "hallo_unet3d.config.json");
  model::UNet3DConditionModel m(cfg);
  std::set<std::string> mine;
  for (const auto& p : m->named_parameters(true)) mine.insert(p.key());
  for (const auto& p : m->named_buffers(true)) mine.insert(p.key());
  const auto sd = io::StateDict::open(dir / "hallo_unet3d.weights.safetensors");
  const auto keys = sd.keys();
  EXPECT_EQ(mine, std::set<std::string>(keys.begin(), keys.end()));
  EXPECT_TRUE(mine.count("down_blocks.3.motion_modules.1.temporal_transformer.transformer_blocks.0."
                         "attention_blocks.1.pos_encoder.pe"));
  EXPECT_EQ(m->transformer_blocks().size(), 16u);
  auto report = nn::load_weights(*m, sd);  // strict: throws on any difference
  EXPECT_TRUE(report.ok());
}

TEST(UNet3D, PlainBlockMotionModulesOnlyRunWithoutTheQuirk) {
  torch::manual_seed(3);
  auto cfg = model::UNet3DConfig::tiny();
  model::UNet3DConditionModel m(cfg);
  const auto in = make_inputs(cfg, 2, 16, 16);
  const auto quirk = run(m, in, nullptr);
  m->mutable_config().skip_motion_in_plain_blocks = false;
  const auto full = run(m, in, nullptr);
  EXPECT_GT((full - quirk).abs().max().item<double>(), 1e-6);  // down_blocks.3 / up_blocks.0 motion modules ran

  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters(true))
      if (p.key().rfind("down_blocks.3.motion_modules.", 0) == 0) p.value().add_(at::randn_like(p.value()));
  }
  const auto full_perturbed = run(m, in, nullptr);
  EXPECT_GT((full_perturbed - full).abs().max().item<double>(), 1e-6);
  m->mutable_config().skip_motion_in_plain_blocks = true;
  EXPECT_TRUE(at::equal(run(m, in, nullptr), quirk));  // never executed upstream
}

TEST(UNet3D, OtherFrameCountsAndNonSquareLatents) {
  torch::manual_seed(4);
  auto cfg = model::UNet3DConfig::tiny();
  model::UNet3DConditionModel m(cfg);
  const int64_t f = 3, h = 24, w = 16;
  const auto in = make_inputs(cfg, f, h, w);
  const auto plain = run(m, in, nullptr);
  EXPECT_EQ(plain.sizes(), (std::vector<int64_t>{2, 4, f, h, w}));
  EXPECT_TRUE(at::isfinite(plain).all().item<bool>());

  // Bank with [ref, 2 motion frames] x 2 for every spatial block (levels by width and depth).
  model::ReferenceBank bank;
  for (const auto& blk : m->transformer_blocks()) {
    const std::string& p = blk.path;
    int64_t level = 0;
    if (p.rfind("down_blocks.", 0) == 0) level = p[12] - '0';
    else if (p.rfind("up_blocks.", 0) == 0) level = 3 - (p[10] - '0');
    else level = 3;
    const int64_t l = (h >> level) * (w >> level);
    bank.put(p, at::randn({6, l, blk.width}).to(at::kHalf));
  }
  const auto read = run(m, in, &bank);
  EXPECT_EQ(read.sizes(), plain.sizes());
  EXPECT_TRUE(at::isfinite(read).all().item<bool>());
  EXPECT_GT((read - plain).abs().max().item<double>(), 1e-6);
  // The uncond half ignores the reference but still sees the motion frames, so both halves change.
  EXPECT_GT((read[0] - plain[0]).abs().max().item<double>(), 1e-6);
}

}  // namespace hallo
