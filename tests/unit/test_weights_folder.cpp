// diffusers / HF folders: config.json + single, variant or sharded weights.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/io/weights.h"
#include "test_util.h"

using namespace hallo;
using namespace hallo::io;
using test::expect_error;

namespace {
void write_index(const std::filesystem::path& p, const std::map<std::string, std::string>& map) {
  nlohmann::json j;
  j["metadata"] = {{"total_size", 0}};
  j["weight_map"] = map;
  test::write_bytes(p, j.dump());
}
}  // namespace

TEST(WeightsFolder, SingleSafetensorsWithConfig) {
  test::TempDir d;
  test::write_bytes(d / "config.json", R"({"_class_name":"UNet2DConditionModel","in_channels":4})");
  write_safetensors(d / "diffusion_pytorch_model.safetensors", {from_tensor("conv_in.weight", at::ones({2, 4, 3, 3}))});
  write_safetensors(d / "diffusion_pytorch_model.fp16.safetensors", {from_tensor("other", at::ones({1}))});
  WeightSet ws = open_weights(d.path());
  EXPECT_EQ(ws.format, "diffusers(safetensors)");
  ASSERT_EQ(ws.tensors.size(), 1u);  // the plain file wins over the fp16 variant
  EXPECT_EQ(ws.tensors[0].name, "conv_in.weight");
  EXPECT_NE(ws.config_json.find("UNet2DConditionModel"), std::string::npos);
}

TEST(WeightsFolder, ShardedIndexReadsEveryShard) {
  test::TempDir d;
  write_safetensors(d / "model-00001-of-00002.safetensors", {from_tensor("a", at::full({2}, 1.0)), from_tensor("b", at::full({3}, 2.0))});
  write_safetensors(d / "model-00002-of-00002.safetensors", {from_tensor("c", at::full({4}, 3.0))});
  write_index(d / "model.safetensors.index.json",
              {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00001-of-00002.safetensors"}, {"c", "model-00002-of-00002.safetensors"}});
  StateDict sd(open_weights(d.path()));
  ASSERT_EQ(sd.keys(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(sd.tensor("c").sum().item<float>(), 12.0f);
  // The index file itself is accepted too.
  EXPECT_EQ(open_weights(d / "model.safetensors.index.json").tensors.size(), 3u);
}

TEST(WeightsFolder, ShardIndexInconsistenciesAreErrors) {
  test::TempDir d;
  write_safetensors(d / "s1.safetensors", {from_tensor("a", at::ones({1}))});
  write_index(d / "model.safetensors.index.json", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}});
  expect_error([&] { open_weights(d.path()); }, {"model.safetensors.index.json", "shard 's2.safetensors'", "does not exist"});
  write_index(d / "model.safetensors.index.json", {{"a", "s1.safetensors"}, {"z", "s1.safetensors"}});
  expect_error([&] { open_weights(d.path()); }, {"s1.safetensors", "'z'", "not in this shard"});
  write_index(d / "model.safetensors.index.json", {{"a", "../s1.safetensors"}});
  expect_error([&] { open_weights(d.path()); }, {"outside the folder"});
}

TEST(WeightsFolder, PytorchModelBinInFolder) {
  test::TempDir d;
  std::filesystem::copy_file(test::fixture("state_dict_p2.pth"), d / "pytorch_model.bin");
  test::write_bytes(d / "config.json", R"({"model_type":"wav2vec2"})");
  WeightSet ws = open_weights(d.path());
  EXPECT_EQ(ws.format, "diffusers(torch-zip)");
  EXPECT_EQ(ws.tensors.size(), 9u);
}

TEST(WeightsFolder, EmptyFolderAndBadConfig) {
  test::TempDir d;
  expect_error([&] { open_weights(d.path()); }, {d.path().string(), "no weights file"});
  write_safetensors(d / "model.safetensors", {from_tensor("a", at::ones({1}))});
  test::write_bytes(d / "config.json", "{broken");
  expect_error([&] { open_weights(d.path()); }, {"config.json", "invalid JSON"});
}
