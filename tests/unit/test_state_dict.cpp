#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "test_util.h"

using namespace hallo;
using namespace hallo::io;
using test::expect_error;

namespace {
WeightSet net_like() {
  WeightSet ws;
  ws.source = "net.pth";
  for (const char* n : {"reference_unet.conv_in.weight", "denoising_unet.conv_in.weight", "denoising_unet.conv_out.bias",
                        "face_locator.conv_in.weight"})
    ws.tensors.push_back(from_tensor(n, at::ones({1})));
  ws.sort_by_name();
  return ws;
}
}  // namespace

TEST(StateDict, SelectPrefixKeepsAndStrips) {
  WeightSet sel = select_prefix(net_like(), "denoising_unet.");
  ASSERT_EQ(sel.tensors.size(), 2u);
  EXPECT_EQ(sel.tensors[0].name, "conv_in.weight");
  EXPECT_EQ(sel.tensors[1].name, "conv_out.bias");
  EXPECT_EQ(select_prefix(net_like(), "denoising_unet.", false).tensors[0].name, "denoising_unet.conv_in.weight");
  EXPECT_TRUE(select_prefix(net_like(), "nothing.").tensors.empty());
}

TEST(StateDict, StripPrefixKeepsOthersAndDetectsClashes) {
  WeightSet s = strip_prefix(net_like(), "face_locator.");
  EXPECT_NE(s.find("conv_in.weight"), nullptr);
  EXPECT_NE(s.find("reference_unet.conv_in.weight"), nullptr);
  WeightSet clash;
  clash.source = "x.bin";
  clash.tensors = {from_tensor("wav2vec2.w", at::ones({1})), from_tensor("w", at::ones({1}))};
  expect_error([&] { strip_prefix(clash, "wav2vec2."); }, {"x.bin", "duplicate tensor name 'w'"});
}

TEST(StateDict, MissingKeyNamesKeyAndSource) {
  StateDict sd(net_like());
  expect_error([&] { sd.record("decoder.w"); }, {"net.pth", "'decoder.w'"});
}

TEST(StateDict, ScalarTypesRoundTrip) {
  for (auto d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8, DType::U8, DType::BOOL})
    EXPECT_EQ(from_scalar_type(to_scalar_type(d)), d);
  expect_error([] { from_scalar_type(at::kComplexFloat); }, {"no weights-file equivalent"});
}

TEST(StateDict, TensorOutlivesStateDict) {
  test::TempDir d;
  write_safetensors(d / "w.safetensors", {from_tensor("w", at::arange(6, at::kFloat))});
  at::Tensor t;
  {
    StateDict sd = StateDict::open(d / "w.safetensors");
    t = sd.tensor("w");
  }
  std::filesystem::remove(d / "w.safetensors");
  EXPECT_TRUE(at::equal(t, at::arange(6, at::kFloat)));  // mapping kept alive by the tensor
  t.add_(1);  // private mapping: writable without touching the file
  EXPECT_EQ(t[5].item<float>(), 6.0f);
}
