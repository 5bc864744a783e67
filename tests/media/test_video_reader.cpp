// Frame-rate conversion, resizing, cropping and trimming, checked against a
// video whose frames carry their own index.
#include <gtest/gtest.h>

#include <memory>

#include "media/probe.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "media_test_util.h"

namespace hallo::media::test {
namespace {

constexpr int kW = 160, kH = 96, kFrames = 60;
constexpr double kFps = 30.0;

class VideoReaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    // "medium" has B-frames, so pts reordering and the mp4 edit list are exercised.
    write_pattern_video(clip(), kFrames, kFps, kW, kH, /*with_audio=*/true, "medium");
  }
  static void TearDownTestSuite() { dir_.reset(); }
  static fs::path clip() { return *dir_ / "pattern.mp4"; }
  static std::unique_ptr<TempDir> dir_;
};
std::unique_ptr<TempDir> VideoReaderTest::dir_;

TEST_F(VideoReaderTest, NativeRateKeepsEveryFrame) {
  VideoDecodeOptions o;
  o.fps = 0;
  const auto frames = read_video(clip(), o);
  ASSERT_EQ(frames.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) {
    EXPECT_EQ(decode_pattern(frames[i].rgb, kW, kH), i) << "frame " << i;
    EXPECT_NEAR(frames[i].time_s, i / kFps, 1e-3);
    EXPECT_EQ(frames[i].width, kW);
    EXPECT_EQ(frames[i].height, kH);
    EXPECT_EQ(frames[i].rgb.size(), static_cast<size_t>(kW * kH * 3));
  }
}

TEST_F(VideoReaderTest, ThirtyToTwentyFiveDropsByTimestamp) {
  const auto frames = read_video(clip());  // default 25 fps
  // 2 s at 25 fps.
  ASSERT_EQ(frames.size(), 50u);
  for (size_t i = 0; i < frames.size(); ++i) {
    // Output i at i/25 s shows source k = floor(i * 30 / 25).
    const int want = static_cast<int>(i * 30 / 25);
    EXPECT_EQ(decode_pattern(frames[i].rgb, kW, kH), want) << "output frame " << i;
    EXPECT_EQ(frames[i].index, static_cast<int64_t>(i));
    EXPECT_NEAR(frames[i].time_s, i / 25.0, 1e-9);
  }
  // Channel order: the bottom strip is red.
  const auto m = mean_rgb(frames[3].rgb, kW, 10, kH - 15, kW - 10, kH - 5);
  EXPECT_NEAR(m[0], 200, 12);
  EXPECT_NEAR(m[1], 30, 12);
  EXPECT_NEAR(m[2], 30, 12);
}

TEST_F(VideoReaderTest, UpsamplingDuplicates) {
  VideoDecodeOptions o;
  o.fps = 60;
  const auto frames = read_video(clip(), o);
  ASSERT_EQ(frames.size(), 120u);
  for (size_t i = 0; i < frames.size(); ++i)
    EXPECT_EQ(decode_pattern(frames[i].rgb, kW, kH), static_cast<int>(i / 2)) << i;
}

TEST_F(VideoReaderTest, StartDurationAndMaxFrames) {
  VideoDecodeOptions o;
  o.start_s = 0.5;
  o.duration_s = 1.0;
  auto frames = read_video(clip(), o);
  ASSERT_EQ(frames.size(), 25u);
  for (size_t i = 0; i < frames.size(); ++i) {
    // Time 0.5 + i/25 -> source floor(15 + 6i/5).
    EXPECT_EQ(decode_pattern(frames[i].rgb, kW, kH), static_cast<int>(15 + i * 6 / 5)) << i;
    EXPECT_NEAR(frames[i].time_s, i / 25.0, 1e-9);
  }
  VideoDecodeOptions m;
  m.max_frames = 7;
  frames = read_video(clip(), m);
  ASSERT_EQ(frames.size(), 7u);
  EXPECT_EQ(decode_pattern(frames[6].rgb, kW, kH), 7);  // 6/25 s -> floor(7.2)
}

TEST_F(VideoReaderTest, ResizeKeepsContent) {
  VideoDecodeOptions o;
  o.out_width = 80;
  o.out_height = 48;
  VideoReader r(clip(), o);
  EXPECT_EQ(r.out_width(), 80);
  EXPECT_EQ(r.out_height(), 48);
  RgbFrame f;
  int n = 0;
  while (r.next(f)) {
    ASSERT_EQ(f.width, 80);
    ASSERT_EQ(f.height, 48);
    ASSERT_EQ(f.rgb.size(), 80u * 48u * 3u);
    EXPECT_EQ(decode_pattern(f.rgb, 80, 48), n * 30 / 25);
    ++n;
  }
  EXPECT_EQ(n, 50);
  // Only one side given: the other follows the aspect ratio (160x96 -> 100x60).
  VideoDecodeOptions w;
  w.out_width = 100;
  w.max_frames = 1;
  const auto one = read_video(clip(), w);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].width, 100);
  EXPECT_EQ(one[0].height, 60);
}

TEST_F(VideoReaderTest, InfoMatchesTheClip) {
  VideoReader r(clip());
  const MediaInfo& i = r.info();
  EXPECT_TRUE(i.has_video);
  EXPECT_TRUE(i.has_audio);
  EXPECT_EQ(i.width, kW);
  EXPECT_EQ(i.height, kH);
  EXPECT_NEAR(i.fps, kFps, 1e-6);
  EXPECT_EQ(i.num_frames, kFrames);
  EXPECT_EQ(i.rotation, 0);
}

TEST(VideoReaderCrop, CenterSquareCrop) {
  TempDir dir;
  // 120x60: red | green | blue thirds; the centred 60x60 square is all green.
  constexpr int w = 120, h = 60;
  std::vector<uint8_t> rgb(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgb[(y * w + x) * 3];
      p[0] = x < 30 ? 220 : 20;
      p[1] = (x >= 30 && x < 90) ? 220 : 20;
      p[2] = x >= 90 ? 220 : 20;
    }
  const fs::path path = dir / "thirds.mp4";
  {
    EncodeOptions eo;
    eo.preset = "ultrafast";
    VideoWriter vw(path, w, h, eo);
    for (int k = 0; k < 5; ++k) vw.write_rgb(rgb.data());
    vw.close();
  }
  VideoDecodeOptions o;
  o.center_crop_square = true;
  o.out_width = o.out_height = 32;
  const auto frames = read_video(path, o);
  ASSERT_EQ(frames.size(), 5u);  // 0.2 s at 25 fps
  ASSERT_EQ(frames[0].width, 32);
  ASSERT_EQ(frames[0].height, 32);
  // Whole frame green, including its left and right edges (crop is centred).
  for (int x0 : {0, 28}) {
    const auto m = mean_rgb(frames[0].rgb, 32, x0, 0, x0 + 4, 32);
    EXPECT_GT(m[1], 190) << "x0=" << x0;
    EXPECT_LT(m[0], 50) << "x0=" << x0;
    EXPECT_LT(m[2], 50) << "x0=" << x0;
  }
  // Without cropping the left edge is red.
  VideoDecodeOptions plain;
  plain.max_frames = 1;
  const auto full = read_video(path, plain);
  ASSERT_EQ(full[0].width, w);
  EXPECT_GT(mean_rgb(full[0].rgb, w, 2, 10, 20, 50)[0], 190);
}

}  // namespace
}  // namespace hallo::media::test
