#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/io/hf_config.h"
#include "test_util.h"

using namespace hallo::io;
using hallo::test::expect_error;

namespace {
JsonFields fields(const std::string& text) { return JsonFields(nlohmann::json::parse(text), "unet/config.json"); }
}  // namespace

TEST(HfConfig, TypedFieldsAndDefaults) {
  auto f = fields(R"({"block_out_channels":[320,640],"layers_per_block":2,"norm_eps":1e-5,
                      "flip_sin_to_cos":true,"act_fn":"silu","cross_attention_dim":null,"scale":2.0})");
  EXPECT_EQ(f.get<std::vector<int>>("block_out_channels"), (std::vector<int>{320, 640}));
  EXPECT_EQ(f.get<int>("layers_per_block"), 2);
  EXPECT_FLOAT_EQ(f.get<float>("norm_eps"), 1e-5f);
  EXPECT_TRUE(f.get<bool>("flip_sin_to_cos"));
  EXPECT_EQ(f.get<std::string>("act_fn"), "silu");
  EXPECT_EQ(f.get_or<int>("cross_attention_dim", 768), 768);  // null means "use the default"
  EXPECT_EQ(f.get_or<int>("absent", 7), 7);
  EXPECT_EQ(f.get<int>("scale"), 2);  // integral float accepted
  EXPECT_EQ(f.unknown_keys({"block_out_channels", "layers_per_block", "norm_eps"}),
            (std::vector<std::string>{"act_fn", "cross_attention_dim", "flip_sin_to_cos", "scale"}));
}

TEST(HfConfig, MissingAndMistypedFieldsNameFileAndField) {
  auto f = fields(R"({"layers_per_block":"two","block_out_channels":[320,"x"],"eps":2.5,"_class_name":"X"})");
  expect_error([&] { f.get<int>("in_channels"); }, {"unet/config.json", "missing required field 'in_channels'"});
  expect_error([&] { f.get<int>("layers_per_block"); }, {"unet/config.json", "'layers_per_block'", "string", "expected an integer"});
  expect_error([&] { f.get<std::vector<int>>("block_out_channels"); }, {"'block_out_channels'", "expected an array of integer"});
  expect_error([&] { f.get<int>("eps"); }, {"'eps'", "expected an integer"});
  expect_error([&] { f.get_or<bool>("layers_per_block", true); }, {"expected a boolean"});
  expect_error([&] { f.object("_harness"); }, {"missing required field '_harness'"});
  EXPECT_TRUE(f.unknown_keys({"layers_per_block", "block_out_channels", "eps"}).empty());  // _private keys ignored
}

TEST(HfConfig, FileErrors) {
  hallo::test::TempDir d;
  expect_error([&] { load_json_file(d / "nope.json"); }, {"nope.json", "cannot open"});
  hallo::test::write_bytes(d / "bad.json", "{\"a\": }");
  expect_error([&] { load_json_file(d / "bad.json"); }, {"bad.json", "invalid JSON"});
  expect_error([&] { JsonFields(nlohmann::json::array(), "c.json"); }, {"c.json", "expected a JSON object"});
}

TEST(HfConfig, GoldenHarnessObjectsParse) {
  auto dir = hallo::test::golden_dir();
  if (!std::filesystem::exists(dir / "sd_unet2d.config.json")) GTEST_SKIP() << "no ../shared/golden";
  JsonFields f(load_json_file(dir / "sd_unet2d.config.json"), "sd_unet2d.config.json");
  EXPECT_EQ(f.get<std::vector<int>>("block_out_channels").size(), 4u);
  EXPECT_NO_THROW(f.object("_harness"));
}
