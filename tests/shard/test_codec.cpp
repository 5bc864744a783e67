// float16 conversion, FNV-1a and clip validation: the building blocks of the shard format.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "core/error.h"
#include "data/shard/checksum.h"
#include "data/shard/clip_codec.h"
#include "data/shard/float16.h"
#include "synthetic.h"

namespace hallo::data {
namespace {

TEST(ShardFloat16, KnownValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // tie rounds to even: overflow to inf
  EXPECT_EQ(float_to_half(0.1f), 0x2e66);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);  // tie to even
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -26)), 0x0001);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
  const uint16_t nan = float_to_half(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_EQ(half_to_float(0x3555), 0.333251953125f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(half_to_float(0xfc00)));
}

TEST(ShardFloat16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(ShardFloat16, MatchesLibtorchRounding) {
  std::mt19937 rng(5);
  std::vector<float> v;
  for (int e = -30; e <= 17; ++e) {
    std::uniform_real_distribution<float> d(-std::ldexp(1.0f, e), std::ldexp(1.0f, e));
    for (int i = 0; i < 2000; ++i) v.push_back(d(rng));
  }
  auto t = at::from_blob(v.data(), {static_cast<int64_t>(v.size())}, at::kFloat).to(at::kHalf);
  const auto* ref = reinterpret_cast<const uint16_t*>(t.data_ptr<at::Half>());
  const auto mine = floats_to_halves(v);
  for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(mine[i], ref[i]) << "value " << v[i];
}

TEST(ShardChecksum, Fnv1aReferenceVectors) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  Fnv1a64 h;  // incremental == one shot
  h.update("foo", 3);
  h.update("bar", 3);
  EXPECT_EQ(h.value(), 0x85944171f73967e8ull);
}

TEST(ShardChecksum, HexRoundTripAndErrors) {
  EXPECT_EQ(hex64(0x00ab00000000cd01ull), "00ab00000000cd01");
  EXPECT_EQ(parse_hex64("00AB00000000cd01", "x"), 0x00ab00000000cd01ull);
  EXPECT_THROW(parse_hex64("12", "x"), Error);
  EXPECT_THROW(parse_hex64("zz00000000000000", "x"), Error);
}

TEST(ShardCodec, ChecksumCoversAttributesAndDatasets) {
  const ClipRecord c = testing::make_clip("clip_a", 1, testing::with_frames(5));
  const EncodedClip e = encode_clip(c, FrameStorage::Raw, 95);
  EXPECT_EQ(e.checksum, clip_checksum(e.attrs, e.datasets));
  auto attrs = e.attrs;
  attrs[1].s += "x";  // source
  EXPECT_NE(clip_checksum(attrs, e.datasets), e.checksum);
  auto ds = e.datasets;
  ds[1].bytes[7] ^= 1;  // audio
  EXPECT_NE(clip_checksum(e.attrs, ds), e.checksum);
  // Frames enter through their per-frame checksums.
  ClipRecord c2 = c;
  c2.frames[3] = c.frames[3].clone();
  c2.frames[3].at<cv::Vec3b>(1, 1)[1] ^= 4;
  EXPECT_NE(encode_clip(c2, FrameStorage::Raw, 95).checksum, e.checksum);
}

TEST(ShardCodec, ValidationNamesTheClipAndProblem) {
  auto expect_error = [](ClipRecord c, const std::string& needle) {
    try {
      validate_clip(c, "/out");
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const ClipRecord good = testing::make_clip("vid_s0_c1", 2, testing::with_frames(4));
  EXPECT_NO_THROW(validate_clip(good, "/out"));
  ClipRecord c = good;
  c.frames.pop_back();
  expect_error(c, "vid_s0_c1': 3 frames given");
  c = good;
  c.audio.pop_back();
  expect_error(c, "audio has");
  c = good;
  c.lip_masks.pop_back();
  expect_error(c, "lip masks have 3 levels");
  c = good;
  c.frames[1] = cv::Mat(64, 32, CV_8UC3);
  expect_error(c, "frame 1 must be CV_8UC3");
  c = good;
  c.id = "a/b";
  expect_error(c, "contains '/'");
  c = good;
  c.landmarks.resize(3);
  expect_error(c, "landmarks has 3 values");
}

}  // namespace
}  // namespace hallo::data
