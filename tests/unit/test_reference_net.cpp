// Hallo ReferenceNet (UNet2D write mode) and the reference bank pairing.
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/hallo/reference_bank.h"
#include "model/io/hf_config.h"
#include "model/unet2d/unet_2d_condition.h"
#include "test_util.h"
#include "tools/golden/golden.h"

using namespace hallo;
using test::expect_error;

TEST(ReferenceNet, HasNoOutputHeadAndReturnsLastUpBlockFeatures) {
  auto cfg = model::UNet2DConfig::tiny();
  cfg.reference_net = true;
  model::UNet2DConditionModel ref(cfg);
  auto params = ref->named_parameters(true);
  EXPECT_EQ(params.find("conv_out.weight"), nullptr);
  EXPECT_EQ(params.find("conv_norm_out.weight"), nullptr);
  model::UNet2DConditionModel full(model::UNet2DConfig::tiny());
  EXPECT_EQ(params.size() + 4, full->named_parameters(true).size());  // 680 of 684 for SD1.5
  ref->eval();
  torch::NoGradGuard ng;
  model::ReferenceBank bank;
  auto y = ref->forward(at::randn({3, 4, 8, 8}), at::zeros({}, at::kLong), at::randn({3, 4, 40}), nullptr, &bank);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 32, 8, 8}));
  EXPECT_EQ(bank.size(), 16u);  // every spatial transformer block wrote once
  EXPECT_EQ(bank.get("down_blocks.0.attentions.0.transformer_blocks.0").sizes(), (std::vector<int64_t>{3, 64, 32}));
  EXPECT_EQ(bank.to(at::kHalf).get("mid_block.attentions.0.transformer_blocks.0").scalar_type(), at::kHalf);
  expect_error([&] { bank.get("nope"); }, {"'nope'"});
}

TEST(ReferenceNet, PairingFollowsUpstreamSortByWidthThenDownUpMid) {
  const auto dir = test::golden_dir();
  if (!std::filesystem::exists(dir / "hallo_reference_unet.config.json")) GTEST_SKIP() << "no ../shared/golden";
  auto j = io::load_json_file(dir / "hallo_reference_unet.config.json");
  auto cfg = model::UNet2DConfig::from_json(j, "hallo_reference_unet.config.json");
  cfg.reference_net = true;
  model::UNet2DConditionModel writer(cfg);
  cfg.reference_net = false;
  model::UNet2DConditionModel reader(cfg);
  auto pairs = model::ReferenceBank::pair_blocks(writer->transformer_blocks(), reader->transformer_blocks());
  std::vector<std::string> order;
  for (const auto& [w, r] : pairs) {
    order.push_back(w);
    EXPECT_EQ(w, r);  // same topology: each block pairs with its namesake
  }
  EXPECT_EQ(order, j["_harness"]["reference_control"]["writer_order"].get<std::vector<std::string>>());
  // Different topologies are refused by name.
  auto wide = model::UNet2DConfig::tiny();
  wide.block_out_channels = {32, 64, 64, 64};
  model::UNet2DConditionModel other(wide);
  expect_error([&] { model::ReferenceBank::pair_blocks(writer->transformer_blocks(), other->transformer_blocks()); },
               {"reference pairing"});
}

TEST(Goldens, ReferenceNetOutputsAndEveryBankEntry) {
  const auto dir = test::golden_dir();
  if (!std::filesystem::exists(dir / "hallo_reference_unet.io.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  auto c = golden::load_case(dir, "hallo_reference_unet");
  EXPECT_EQ(golden::find_runner(c).key, "hallo_reference_unet");
  auto rows = golden::compare(c, golden::run_reference_unet(c), 1e-4);
  EXPECT_EQ(rows.size(), 17u);
  for (const auto& r : rows) EXPECT_TRUE(r.ok) << r.key << " rel " << r.rel << " " << r.note;
}
