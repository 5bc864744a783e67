// EMA of the trainable weights: decay 0 is the live weights, one update is the closed
// form, the warm start before start_step, `every`, swap, save/restore, config parsing.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "trainer/early_stop.h"
#include "trainer/ema.h"
#include "trainer/train_config.h"

namespace hallo::trainer {
namespace {

std::vector<NamedParam> params(uint64_t seed) {
  at::manual_seed(seed);
  return {{"a.weight", at::randn({4, 3})}, {"b.bias", at::randn({5})}};
}

void step_weights(std::vector<NamedParam>& p, double by) {
  for (auto& x : p) x.param.add_(by);
}

TEST(Ema, DecayZeroIsTheLiveWeights) {
  auto p = params(1);
  Ema ema({true, 0.0, 0, 1, false}, p);
  for (int s = 1; s <= 3; ++s) {
    step_weights(p, 0.5 * s);
    ema.update(s);
    for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(at::equal(ema.shadow()[i], p[i].param));
  }
}

TEST(Ema, OneUpdateIsTheClosedForm) {
  auto p = params(2);
  const double d = 0.9;
  std::vector<at::Tensor> before;
  for (const auto& x : p) before.push_back(x.param.clone());
  Ema ema({true, d, 0, 1, false}, p);
  step_weights(p, 1.0);
  ema.update(1);
  for (size_t i = 0; i < p.size(); ++i)
    EXPECT_TRUE(at::allclose(ema.shadow()[i], d * before[i] + (1 - d) * p[i].param, 1e-6, 1e-6));
}

TEST(Ema, FollowsTheLiveWeightsBeforeStartAndUpdatesEveryK) {
  auto p = params(3);
  Ema ema({true, 0.5, 2, 2, false}, p);
  step_weights(p, 1.0);
  ema.update(1);  // <= start_step: copy
  EXPECT_TRUE(at::equal(ema.shadow()[0], p[0].param));
  step_weights(p, 1.0);
  ema.update(2);  // still <= start_step
  const at::Tensor at2 = p[0].param.clone();
  EXPECT_TRUE(at::equal(ema.shadow()[0], at2));
  step_weights(p, 2.0);
  ema.update(3);  // (3 - 2) % 2 != 0: no update
  EXPECT_TRUE(at::equal(ema.shadow()[0], at2));
  step_weights(p, 2.0);
  ema.update(4);  // update: 0.5 * at2 + 0.5 * (at2 + 4)
  EXPECT_TRUE(at::allclose(ema.shadow()[0], at2 + 2.0, 1e-6, 1e-6));
}

TEST(Ema, SwapExchangesAndRestores) {
  auto p = params(4);
  Ema ema({true, 0.5, 0, 1, false}, p);
  step_weights(p, 2.0);
  ema.update(1);
  const at::Tensor live = p[0].param.clone(), avg = ema.shadow()[0].clone();
  {
    EmaSwap swap(&ema);
    EXPECT_TRUE(at::equal(p[0].param, avg));
  }
  EXPECT_TRUE(at::equal(p[0].param, live));
  EXPECT_TRUE(at::equal(ema.shadow()[0], avg));
}

TEST(Ema, SaveRestoreRoundTripsAndRefusesMismatches) {
  auto p = params(5);
  Ema ema({true, 0.7, 0, 1, false}, p);
  step_weights(p, 1.0);
  ema.update(1);
  const auto file = std::filesystem::temp_directory_path() / "hallo_ema_test.safetensors";
  ema.save(file);
  auto q = params(6);
  Ema other({true, 0.7, 0, 1, false}, q);
  other.restore(file);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(at::equal(other.shadow()[i], ema.shadow()[i]));
  std::vector<NamedParam> wrong = {{"a.weight", at::zeros({4, 3})}, {"c.bias", at::zeros({5})}};
  Ema bad({true, 0.7, 0, 1, false}, wrong);
  try {
    bad.restore(file);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.bias"), std::string::npos) << e.what();
  }
  std::filesystem::remove(file);
}

TEST(Ema, ConfigBlockSwitchesItOnAndIsValidated) {
  auto c = TrainConfig::from_json(nlohmann::json::parse(R"({"stage": 2, "ema": {"decay": 0.99, "every": 2}})"), "t.yaml");
  EXPECT_TRUE(c.ema.enabled);
  EXPECT_DOUBLE_EQ(c.ema.decay, 0.99);
  EXPECT_EQ(c.ema.every, 2);
  EXPECT_FALSE(TrainConfig::from_json(nlohmann::json::parse(R"({"stage": 2})"), "t.yaml").ema.enabled);
  EXPECT_THROW(TrainConfig::from_json(nlohmann::json::parse(R"({"stage": 2, "ema": {"decay": 1.5}})"), "t.yaml").validate("t.yaml"),
               Error);
  EXPECT_THROW(TrainConfig::from_json(nlohmann::json::parse(R"({"stage": 2, "ema": {"rate": 1}})"), "t.yaml"), Error);
}

TEST(EarlyStop, PatienceCountsEvaluationsWithoutImprovement) {
  EarlyStop e{2, 0.01};
  EXPECT_TRUE(e.record(0, 1.0));
  EXPECT_TRUE(e.record(10, 0.9));
  EXPECT_FALSE(e.record(20, 0.895));  // better, but not by more than min_delta
  EXPECT_FALSE(e.should_stop());
  EXPECT_FALSE(e.record(30, std::nan("")));  // a non-finite loss never improves
  EXPECT_TRUE(e.should_stop());
  EXPECT_EQ(e.best_step, 10);
  EXPECT_DOUBLE_EQ(e.best, 0.9);
  EarlyStop off;
  off.record(0, 1.0);
  off.record(1, 2.0);
  EXPECT_FALSE(off.should_stop());
  EXPECT_THROW(TrainConfig::from_json(nlohmann::json::parse(R"({"val": {"early_stop_patience": 2, "loss_steps": 0}})"),
                                      "t.yaml").validate("t.yaml"),
               Error);
}

TEST(Personalize, ConfigShipsAndInitNetIsNetPath) {
  const auto c = TrainConfig::load(std::filesystem::path(HALLO_SOURCE_DIR) / "configs" / "train" / "personalize.yaml",
                                   {"init.net=/runs/base/final"});
  EXPECT_EQ(c.net_path, "/runs/base/final");
  EXPECT_EQ(c.stage, 2);
  EXPECT_EQ(c.trainable_patterns.size(), 4u);
  EXPECT_TRUE(c.ema.enabled);
  EXPECT_THROW(TrainConfig::from_json(nlohmann::json::parse(R"({"init": {"net": "a"}, "net_path": "b"})"), "t.yaml"), Error);
  EXPECT_THROW(TrainConfig::from_json(nlohmann::json::parse(R"({"init": {"nett": "a"}})"), "t.yaml"), Error);
}

}  // namespace
}  // namespace hallo::trainer
