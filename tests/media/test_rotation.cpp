// Display-matrix rotation: rotate_rgb itself, and a tagged mp4 decoded the way
// the ffmpeg CLI shows it.
#include <gtest/gtest.h>

#include "media/probe.h"
#include "media/rotate.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "media_test_util.h"

namespace hallo::media::test {
namespace {

TEST(MediaRotation, RotateRgbMovesPixels) {
  // 3x2 image, pixel value = 10*y + x in every channel.
  const int w = 3, h = 2;
  std::vector<uint8_t> img(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) img[(y * w + x) * 3 + c] = static_cast<uint8_t>(10 * y + x);
  auto px = [](const std::vector<uint8_t>& v, int width, int x, int y) { return v[(y * width + x) * 3]; };
  const auto cw = rotate_rgb(img.data(), w, h, 90);  // 2 wide, 3 tall
  // Clockwise: the bottom-left source pixel (0,1) becomes the top-left.
  EXPECT_EQ(px(cw, 2, 0, 0), 10);
  EXPECT_EQ(px(cw, 2, 1, 0), 0);
  EXPECT_EQ(px(cw, 2, 1, 2), 2);
  const auto r180 = rotate_rgb(img.data(), w, h, 180);
  EXPECT_EQ(px(r180, 3, 0, 0), 12);
  EXPECT_EQ(px(r180, 3, 2, 1), 0);
  const auto ccw = rotate_rgb(img.data(), w, h, 270);
  EXPECT_EQ(px(ccw, 2, 0, 0), 2);
  EXPECT_EQ(px(ccw, 2, 0, 2), 0);
  EXPECT_EQ(rotate_rgb(img.data(), w, h, 0), img);
  EXPECT_THROW(rotate_rgb(img.data(), w, h, 45), hallo::Error);
}

TEST(MediaRotation, TaggedMp4DecodesRotatedLikeFfmpeg) {
  if (!have_program("ffmpeg")) GTEST_SKIP() << "ffmpeg not installed";
  TempDir dir;
  // 64x48 quadrants: red, green / blue, white.
  constexpr int w = 64, h = 48;
  std::vector<uint8_t> img(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &img[(y * w + x) * 3];
      const bool right = x >= w / 2, bottom = y >= h / 2;
      p[0] = (!right && !bottom) || (right && bottom) ? 220 : 20;
      p[1] = (right && !bottom) || (right && bottom) ? 220 : 20;
      p[2] = (!right && bottom) || (right && bottom) ? 220 : 20;
    }
  const fs::path src = dir / "src.mp4", rot = dir / "rot.mp4";
  {
    EncodeOptions o;
    o.preset = "ultrafast";
    VideoWriter vw(src, w, h, o);
    for (int k = 0; k < 3; ++k) vw.write_rgb(img.data());
    vw.close();
  }
  // FFmpeg >= 6 tags a display matrix with the input option -display_rotation (counter-
  // clockwise degrees) and ignores the old `rotate` metadata when muxing (7.1 writes an
  // untagged file); bookworm's 5.1 knows only the metadata form.
  if (run_command("ffmpeg -v quiet -y -display_rotation:v:0 90 -i '" + src.string() + "' -c copy '" +
                  rot.string() + "'") != 0)
    ASSERT_EQ(run_command("ffmpeg -v error -y -i '" + src.string() + "' -c copy -metadata:s:v:0 rotate=90 '" +
                          rot.string() + "'"),
              0);
  const MediaInfo info = probe(rot);
  EXPECT_EQ(info.width, w);  // coded size
  EXPECT_EQ(info.height, h);
  EXPECT_TRUE(info.rotation == 90 || info.rotation == 270) << info.rotation;
  EXPECT_EQ(info.display_width(), h);

  VideoDecodeOptions o;
  o.fps = 0;
  const auto frames = read_video(rot, o);
  ASSERT_EQ(frames.size(), 3u);
  ASSERT_EQ(frames[0].width, h);
  ASSERT_EQ(frames[0].height, w);

  // The ffmpeg CLI's autorotated picture is the reference for the direction.
  std::string raw;
  ASSERT_EQ(run_command("ffmpeg -v error -i '" + rot.string() + "' -frames:v 1 -f rawvideo -pix_fmt rgb24 -", &raw), 0);
  ASSERT_EQ(raw.size(), frames[0].rgb.size());
  double diff = 0;
  for (size_t i = 0; i < raw.size(); ++i) diff += std::abs(static_cast<uint8_t>(raw[i]) - frames[0].rgb[i]);
  EXPECT_LT(diff / raw.size(), 6.0);

  // Same orientation through our own rotate_rgb of the unrotated decode.
  o.apply_rotation = false;
  const auto plain = read_video(rot, o);
  ASSERT_EQ(plain[0].width, w);
  const auto mine = rotate_rgb(plain[0].rgb.data(), w, h, info.rotation);
  EXPECT_EQ(mine, frames[0].rgb);

  // Rotation and resizing compose: 24x32 output of the rotated 48x64 view.
  VideoDecodeOptions small;
  small.out_width = 24;
  small.out_height = 32;
  small.max_frames = 1;
  const auto s = read_video(rot, small);
  ASSERT_EQ(s[0].width, 24);
  ASSERT_EQ(s[0].height, 32);
  const auto m_small = mean_rgb(s[0].rgb, 24, 2, 2, 10, 10);
  const auto m_full = mean_rgb(frames[0].rgb, h, 4, 4, 20, 20);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(m_small[c], m_full[c], 25) << c;
}

}  // namespace
}  // namespace hallo::media::test
