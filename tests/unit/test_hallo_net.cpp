// HalloNet (net.pth layout), assembly from SD + AnimateDiff, and the one-clip pipeline golden.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/hallo/hallo_net.h"
#include "model/io/hf_config.h"
#include "test_util.h"
#include "tools/golden/golden.h"

using namespace hallo;
using test::expect_error;

namespace {
bool have_golden(const std::string& f) { return std::filesystem::exists(test::golden_dir() / f); }

model::HalloNetConfig pipeline_net_config() {
  auto j = io::load_json_file(test::golden_dir() / "hallo_pipeline.config.json");
  return model::HalloNetConfig::from_json(j["net"], "hallo_pipeline.config.json:net");
}

io::StateDict with_records(const io::StateDict& src, const std::function<bool(io::TensorRecord&)>& edit,
                           const std::string& source) {
  io::WeightSet ws = src.weights();
  ws.source = source;
  std::vector<io::TensorRecord> kept;
  for (auto& r : ws.tensors)
    if (edit(r)) kept.push_back(r);
  ws.tensors = kept;
  ws.sort_by_name();
  return io::StateDict(ws);
}
}  // namespace

TEST(HalloNet, NetPthLayoutLoadsStrictlyAndNamesEveryProblem) {
  if (!have_golden("hallo_pipeline.weights.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  model::HalloNet net(pipeline_net_config());
  auto sd = io::StateDict::open(test::golden_dir() / "hallo_pipeline.weights.safetensors");
  auto rep = net->load(sd);
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(rep.loaded, sd.size());
  for (const char* prefix : {"reference_unet.", "denoising_unet.", "face_locator.", "imageproj.", "audioproj."})
    EXPECT_GT(sd.with_prefix(prefix).size(), 0u) << prefix;
  EXPECT_FALSE(sd.contains("reference_unet.conv_out.weight"));  // 680 of 684 SD keys

  auto broken = with_records(sd, [](io::TensorRecord& r) {
    if (r.name == "audioproj.proj1.weight") r.name = "audioproj.proj1.weight_old";
    if (r.name == "imageproj.norm.bias") r.shape = {r.shape[0] / 2}, r.storage = io::owned_blob(std::vector<uint8_t>(r.nbytes()));
    return true;
  }, "net.pth");
  model::HalloNet fresh(pipeline_net_config());
  expect_error([&] { fresh->load(broken); },
               {"net.pth", "audioproj.proj1.weight", "audioproj.proj1.weight_old", "imageproj.norm.bias: file [20] vs model [40]"});
}

TEST(HalloNet, AssembleFromSdUnetAndMotionModule) {
  if (!have_golden("hallo_pipeline.weights.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  auto net_sd = io::StateDict::open(test::golden_dir() / "hallo_pipeline.weights.safetensors");
  // An "SD1.5 UNet" (the reference net's weights plus an output head) and an
  // "AnimateDiff checkpoint" (the motion modules), both in their own key layouts.
  auto unet = with_records(net_sd.with_prefix("reference_unet."), [](io::TensorRecord&) { return true; }, "unet.safetensors");
  io::WeightSet u = unet.weights();
  u.tensors.push_back(io::from_tensor("conv_norm_out.weight", at::ones({32})));
  u.tensors.push_back(io::from_tensor("conv_norm_out.bias", at::zeros({32})));
  u.tensors.push_back(io::from_tensor("conv_out.weight", at::zeros({4, 32, 3, 3})));
  u.tensors.push_back(io::from_tensor("conv_out.bias", at::zeros({4})));
  u.sort_by_name();
  auto mm = with_records(net_sd.with_prefix("denoising_unet."),
                         [](io::TensorRecord& r) { return r.name.find("motion_modules.") != std::string::npos; }, "mm.ckpt");
  model::HalloNet net(pipeline_net_config());
  const auto before = net->denoising_unet->named_parameters(true)["down_blocks.0.audio_modules.0.proj_in.weight"].clone();
  auto rep = net->assemble(io::StateDict(u), mm);
  EXPECT_TRUE(rep.reference.unexpected.empty());
  EXPECT_GT(rep.motion.loaded, 0u);
  auto p = net->denoising_unet->named_parameters(true);
  EXPECT_TRUE(at::equal(p["conv_in.weight"], net_sd.tensor("reference_unet.conv_in.weight")));  // from the "SD UNet"
  EXPECT_TRUE(at::equal(net->reference_unet->conv_in->weight, net_sd.tensor("reference_unet.conv_in.weight")));
  EXPECT_TRUE(at::equal(p["down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"],
                        net_sd.tensor("denoising_unet.down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight")));
  EXPECT_TRUE(at::equal(p["down_blocks.0.audio_modules.0.proj_in.weight"], before));  // fresh, untouched

  // A mis-shaped motion-module tensor is reported by name, never silently re-initialised.
  auto bad_mm = with_records(mm, [](io::TensorRecord& r) {
    if (r.name == "down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight") r.shape = {r.shape[0] + 1, r.shape[1]}, r.storage = io::owned_blob(std::vector<uint8_t>(r.nbytes()));
    return true;
  }, "mm_bad.ckpt");
  model::HalloNet net2(pipeline_net_config());
  expect_error([&] { net2->assemble(io::StateDict(u), bad_mm); },
               {"mm_bad.ckpt", "motion module mis-shaped", "down_blocks.0.motion_modules.0.temporal_transformer.proj_in.weight"});
}

TEST(Goldens, PipelineOneClipWithinTolerance) {
  if (!have_golden("hallo_pipeline.io.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  auto c = golden::load_case(test::golden_dir(), "hallo_pipeline");
  c.want_hooks = true;
  const auto& r = golden::find_runner(c);
  EXPECT_EQ(r.key, "hallo_pipeline");
  auto out = r.run(c);
  auto rows = golden::compare(c, out, 1e-3);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].ok) << rows[0].rel;
  // Recorded intermediates: every denoising step's CFG batch within 1e-4.
  for (int i = 0; i < 3; ++i) {
    const std::string k = "rec.step" + std::to_string(i) + ".noise_pred_cfg_batch";
    const auto& want = c.io.at(k);
    EXPECT_LT((out.at(k) - want).abs().max().item<double>() / want.abs().max().item<double>(), 1e-4) << k;
  }
}
