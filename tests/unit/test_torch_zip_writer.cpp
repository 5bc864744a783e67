// The torch.save-format writer: what it writes reads back through the project's own
// restricted unpickler with the same names, dtypes, shapes and bytes (the Python side,
// torch.load(weights_only=True), is checked by tests/cli/test_train_cli.py).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "model/io/state_dict.h"
#include "model/io/torch_zip_writer.h"
#include "tests/common/temp_dir.h"

namespace hallo::io {
namespace {

TEST(TorchZipWriter, RoundTripsThroughTheRestrictedUnpickler) {
  test::TempDir tmp("hallo_tzip");
  at::manual_seed(0);
  const at::Tensor big = at::randn({5, 7});
  std::vector<TensorRecord> recs = {
      from_tensor("a.weight", at::randn({3, 4})),
      from_tensor("b.half", at::randn({6}).to(at::kHalf)),
      from_tensor("c.bf16", at::randn({2, 2}).to(at::kBFloat16)),
      from_tensor("d.count", at::tensor(int64_t{3000000000})),  // 0-dim
      from_tensor("e.idx", at::arange(10, at::kLong).view({2, 5})),
      from_tensor("f.mask", at::rand({4}) > 0.5),
      from_tensor("g.transposed", big.t()),  // written contiguous
  };
  const auto path = tmp / "net.pth";
  write_torch_zip(path, recs);
  const StateDict sd = StateDict::open(path);
  EXPECT_EQ(sd.weights().format, "torch-zip");
  ASSERT_EQ(sd.size(), recs.size());
  for (const auto& r : recs) {
    ASSERT_TRUE(sd.contains(r.name)) << r.name;
    const at::Tensor want = to_tensor(r), got = sd.tensor(r.name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type()) << r.name;
    EXPECT_EQ(got.sizes(), want.sizes()) << r.name;
    EXPECT_TRUE(at::equal(got, want)) << r.name;
  }
  EXPECT_TRUE(at::equal(sd.tensor("g.transposed"), big.t()));
}

TEST(TorchZipWriter, PickleUsesOnlyAllowListedGlobals) {
  const std::string p = torch_state_dict_pickle({from_tensor("w", at::ones({2}))});
  EXPECT_EQ(p.substr(0, 2), std::string("\x80\x02", 2));
  EXPECT_NE(p.find("collections\nOrderedDict\n"), std::string::npos);
  EXPECT_NE(p.find("torch._utils\n_rebuild_tensor_v2\n"), std::string::npos);
  EXPECT_NE(p.find("torch\nFloatStorage\n"), std::string::npos);
  EXPECT_EQ(p.find("torch.jit"), std::string::npos);
  EXPECT_EQ(p.back(), '.');
}

}  // namespace
}  // namespace hallo::io
