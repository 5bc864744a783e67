#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstring>

#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/io/weights.h"
#include "test_util.h"

using namespace hallo;
using namespace hallo::io;
using test::expect_error;
using test::safetensors_bytes;

namespace {

std::vector<TensorRecord> all_dtype_records() {
  std::vector<TensorRecord> r;
  at::manual_seed(7);
  r.push_back(from_tensor("f64", at::randn({2, 3}, at::kDouble)));
  r.push_back(from_tensor("f32", at::randn({4, 1, 2})));
  r.push_back(from_tensor("f16", at::randn({5}).to(at::kHalf)));
  r.push_back(from_tensor("bf16", at::randn({3, 3}).to(at::kBFloat16)));
  r.push_back(from_tensor("i64", at::tensor({-(int64_t{1} << 40), int64_t{1} << 62}, at::kLong)));
  r.push_back(from_tensor("i32", at::tensor({-7, 1 << 30}, at::kInt)));
  r.push_back(from_tensor("i16", at::tensor({-300, 300}, at::kShort)));
  r.push_back(from_tensor("i8", at::tensor({-128, 127}, at::kChar)));
  r.push_back(from_tensor("u8", at::tensor({0, 255}, at::kByte)));
  r.push_back(from_tensor("bool", at::tensor({1, 0, 1}, at::kByte).to(at::kBool)));
  r.push_back(from_tensor("scalar", at::scalar_tensor(2.5)));
  r.push_back(from_tensor("empty", at::zeros({0, 3})));
  return r;
}

bool same_bytes(const TensorRecord& a, const TensorRecord& b) {
  if (a.dtype != b.dtype || a.shape != b.shape || a.nbytes() != b.nbytes()) return false;
  std::vector<uint8_t> x(a.nbytes()), y(b.nbytes());
  copy_contiguous(a, x.data());
  copy_contiguous(b, y.data());
  return x == y;
}

}  // namespace

TEST(Safetensors, RoundTripEveryDtypeBitExact) {
  test::TempDir d;
  auto recs = all_dtype_records();
  write_safetensors(d / "all.safetensors", recs, {{"note", "hi"}});
  auto ws = read_safetensors(d / "all.safetensors");
  ASSERT_EQ(ws.tensors.size(), recs.size());
  EXPECT_EQ(ws.metadata.at("note"), "hi");
  for (const auto& r : recs) {
    const TensorRecord* got = ws.find(r.name);
    ASSERT_NE(got, nullptr) << r.name;
    EXPECT_TRUE(same_bytes(r, *got)) << r.name;
  }
}

TEST(Safetensors, DataRegionIsAlignedAndTensorsAreZeroCopy) {
  test::TempDir d;
  write_safetensors(d / "a.safetensors", {from_tensor("w", at::arange(16, at::kFloat))});
  auto ws = read_safetensors(d / "a.safetensors");
  const auto& r = ws.tensors.at(0);
  EXPECT_EQ(r.offset % 8, 0u);
  at::Tensor t = to_tensor(r);
  EXPECT_EQ(t.data_ptr(), static_cast<void*>(r.storage->data() + r.offset));  // no copy
  EXPECT_TRUE(at::equal(t, at::arange(16, at::kFloat)));
}

TEST(Safetensors, WritesStridedViewsContiguously) {
  test::TempDir d;
  at::Tensor base = at::arange(12, at::kFloat).view({3, 4});
  TensorRecord whole = from_tensor("base", base);
  TensorRecord view = whole;  // transpose as a strided view over the same bytes
  view.name = "t";
  view.shape = {4, 3};
  view.strides = {1, 4};
  write_safetensors(d / "v.safetensors", {whole, view});
  StateDict sd = StateDict::open(d / "v.safetensors");
  EXPECT_TRUE(at::equal(sd.tensor("t"), base.t().contiguous()));
}

TEST(Safetensors, MisalignedDataIsCopiedNotMisread) {
  // A valid file whose header length (3) leaves the data at offset 11.
  test::TempDir d;
  float v[2] = {1.5f, -2.25f};
  std::string data(reinterpret_cast<char*>(v), 8);
  std::string hdr = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  test::write_bytes(d / "m.safetensors", safetensors_bytes(hdr + " ", data));
  StateDict sd = StateDict::open(d / "m.safetensors");
  at::Tensor t = sd.tensor("x");
  EXPECT_FLOAT_EQ(t[0].item<float>(), 1.5f);
  EXPECT_FLOAT_EQ(t[1].item<float>(), -2.25f);
}

TEST(Safetensors, DetectedByContentEvenWhenHeaderLengthLooksLikePickle) {
  // A header of 0x80 + 8k bytes starts the file with 0x80, pickle's PROTO opcode.
  test::TempDir d;
  std::string name(0x80 - 60, 'n');
  std::vector<TensorRecord> recs{from_tensor(name, at::ones({1}))};
  std::string h = safetensors_header_json(recs, {});
  ASSERT_EQ(h.size() % 256, 0x80u) << "adjust the name length so the header length's low byte is 0x80";
  write_safetensors(d / "x.safetensors", recs);
  EXPECT_EQ(detect_file_format(d / "x.safetensors"), "safetensors");
  EXPECT_EQ(open_weights(d / "x.safetensors").tensors.at(0).name, name);
}

TEST(Safetensors, GoldenFormatsProbeDecodesExactly) {
  auto dir = test::golden_dir();
  if (!std::filesystem::exists(dir / "formats_probe.weights.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  StateDict w = StateDict::open(dir / "formats_probe.weights.safetensors");
  StateDict io = StateDict::open(dir / "formats_probe.io.safetensors");
  EXPECT_EQ(w.record("probe.bf16").dtype, DType::BF16);
  EXPECT_EQ(w.record("probe.f16").dtype, DType::F16);
  EXPECT_TRUE(at::equal(w.tensor("probe.bf16").to(at::kFloat), io.tensor("out.bf16_as_f32")));
  EXPECT_TRUE(at::equal(w.tensor("probe.f16").to(at::kFloat), io.tensor("out.f16_as_f32")));
  EXPECT_TRUE(at::equal(w.tensor("probe.f32"), io.tensor("out.f32")));
  EXPECT_TRUE(at::equal(w.tensor("probe.i64"), io.tensor("out.i64")));
  EXPECT_EQ(w.tensor("probe.scalar_f32").dim(), 0);
  EXPECT_EQ(w.tensor("probe.scalar_f32").item<float>(), io.tensor("out.scalar_f32").item<float>());
  EXPECT_EQ(w.tensor("probe.empty_f32").sizes(), io.tensor("out.empty_f32").sizes());
}

struct BadCase {
  const char* label;
  std::string bytes;
  std::vector<std::string> needles;
};

class SafetensorsBad : public ::testing::TestWithParam<int> {};

static std::vector<BadCase> bad_cases() {
  const std::string f8(8, '\0');
  auto hdr = [](const std::string& entry) { return "{" + entry + "}"; };
  std::string huge(8, '\0');
  huge[7] = 0x01;  // 2^56 bytes of header
  std::string over = safetensors_bytes("{}", "");
  over[0] = 100;  // claims 100 header bytes, has 2
  return {
      {"too short", "abc", {"too short"}},
      {"huge header", huge + "{}", {"exceeds", "limit"}},
      {"header past end", over, {"exceeds the file size"}},
      {"not json", safetensors_bytes("{not json}", ""), {"invalid safetensors header JSON"}},
      {"not object", safetensors_bytes("[1,2]", ""), {"does not start with"}},
      {"bad dtype", safetensors_bytes(hdr(R"("w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]})"), "x"), {"'w'", "unsupported dtype 'F8'"}},
      {"negative dim", safetensors_bytes(hdr(R"("w":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]})"), "x"), {"'w'", "non-negative"}},
      {"out of range", safetensors_bytes(hdr(R"("w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]})"), f8), {"'w'", "out of range"}},
      {"begin > end", safetensors_bytes(hdr(R"("w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]})"), f8), {"'w'", "begin 4 > end 0"}},
      {"size mismatch", safetensors_bytes(hdr(R"("w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]})"), f8), {"'w'", "needs 12"}},
      {"overlap", safetensors_bytes(hdr(R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})"), f8), {"'a'", "'b'", "overlap"}},
      {"missing offsets", safetensors_bytes(hdr(R"("w":{"dtype":"F32","shape":[1]})"), f8), {"'w'", "data_offsets"}},
      {"extra field", safetensors_bytes(hdr(R"("w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1})"), f8), {"unexpected field 'x'"}},
      {"bad metadata", safetensors_bytes(hdr(R"("__metadata__":{"k":1})"), ""), {"__metadata__", "'k'"}},
      {"float shape", safetensors_bytes(hdr(R"("w":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]})"), f8), {"non-negative integers"}},
      {"overflowing shape", safetensors_bytes(hdr(R"("w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,1]})"), f8), {"too large"}},
  };
}

TEST_P(SafetensorsBad, ClearErrorNamingTheFile) {
  const auto c = bad_cases().at(GetParam());
  SCOPED_TRACE(c.label);
  test::TempDir d;
  auto p = d / "bad.safetensors";
  test::write_bytes(p, c.bytes);
  auto needles = c.needles;
  needles.push_back(p.string());
  expect_error([&] { read_safetensors(p); }, needles);
}
INSTANTIATE_TEST_SUITE_P(AllCases, SafetensorsBad, ::testing::Range(0, static_cast<int>(bad_cases().size())));

TEST(Safetensors, WriterRejectsDuplicateNamesAndWritesNothing) {
  test::TempDir d;
  auto r = from_tensor("w", at::ones({2}));
  expect_error([&] { write_safetensors(d / "o.safetensors", {r, r}); }, {"duplicate tensor name 'w'"});
  EXPECT_FALSE(std::filesystem::exists(d / "o.safetensors"));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(d.path()), {}), 0);
}
