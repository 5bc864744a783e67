// VideoWriter -> file -> probe / ffprobe / readers, plus VFR input made by the ffmpeg CLI.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "media/audio_reader.h"
#include "media/probe.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "media_test_util.h"

namespace hallo::media::test {
namespace {

TEST(MediaRoundTrip, Mp4WithAudio) {
  TempDir dir;
  const fs::path path = dir / "clip.mp4";
  write_pattern_video(path, 50, 25.0, 128, 64, /*with_audio=*/true);
  // Only the target remains in the directory: no temp files left over.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);

  const MediaInfo info = probe(path);
  EXPECT_TRUE(info.has_video);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.width, 128);
  EXPECT_EQ(info.height, 64);
  EXPECT_NEAR(info.fps, 25.0, 1e-6);
  EXPECT_EQ(info.num_frames, 50);
  EXPECT_NEAR(info.duration_s, 2.0, 0.05);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_EQ(info.audio_sample_rate, 44100);
  EXPECT_EQ(info.audio_channels, 1);

  const auto frames = read_video(path);
  ASSERT_EQ(frames.size(), 50u);
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(decode_pattern(frames[i].rgb, 128, 64), static_cast<int>(i));

  // Audio: as long as the video, still a 440 Hz tone of the written level.
  const auto audio = read_audio(path);
  EXPECT_NEAR(static_cast<double>(audio.size()), 2.0 * 16000, 0.03 * 16000);
  EXPECT_NEAR(zero_crossing_freq(audio, 16000, 1600, 30000), 440.0, 4.4);
  EXPECT_NEAR(rms(audio, 1600, 30000), 0.5 / std::sqrt(2.0), 0.05 * 0.5 / std::sqrt(2.0));

  if (!have_program("ffprobe")) GTEST_SKIP() << "ffprobe not installed";
  std::string out;
  ASSERT_EQ(run_command("ffprobe -v error -count_frames -show_streams -of json '" + path.string() + "'", &out), 0);
  const auto j = nlohmann::json::parse(out);
  double vdur = -1, adur = -1;
  for (const auto& s : j.at("streams")) {
    if (s.at("codec_type") == "video") {
      EXPECT_EQ(s.at("codec_name"), "h264");
      EXPECT_EQ(s.at("pix_fmt"), "yuv420p");
      EXPECT_EQ(s.at("nb_read_frames"), "50");
      EXPECT_EQ(s.at("width"), 128);
      vdur = std::stod(s.at("duration").get<std::string>());
    } else if (s.at("codec_type") == "audio") {
      EXPECT_EQ(s.at("codec_name"), "aac");
      adur = std::stod(s.at("duration").get<std::string>());
    }
  }
  EXPECT_NEAR(vdur, 2.0, 1e-3);
  ASSERT_GT(adur, 0) << "ffprobe found no audio stream";
  EXPECT_NEAR(adur, vdur, 0.05);
}

TEST(MediaRoundTrip, AudioFromFileIsTrimmedToVideo) {
  TempDir dir;
  const fs::path wav = dir / "long.wav";
  write_wav(wav, sine(300.0, 0.4, 22050, 3.0), 22050);  // 3 s of audio for 1 s of video
  const fs::path path = dir / "clip.mp4";
  {
    EncodeOptions o;
    o.preset = "ultrafast";
    VideoWriter w(path, 64, 64, o);
    for (int k = 0; k < 25; ++k) w.write_rgb(pattern_frame(k, 64, 64).data());
    w.set_audio_file(wav);
    w.close();
  }
  const MediaInfo info = probe(path);
  EXPECT_EQ(info.audio_sample_rate, 22050);
  const auto audio = read_audio(path);
  EXPECT_NEAR(static_cast<double>(audio.size()), 16000, 0.04 * 16000);
  EXPECT_NEAR(zero_crossing_freq(audio, 16000, 800, 15000), 300.0, 3.0);
}

TEST(MediaRoundTrip, OddSizeIsPaddedToEven) {
  TempDir dir;
  const fs::path path = dir / "odd.mp4";
  constexpr int w = 99, h = 75;
  {
    EncodeOptions o;
    o.preset = "ultrafast";
    VideoWriter vw(path, w, h, o);
    EXPECT_EQ(vw.encoded_width(), 100);
    EXPECT_EQ(vw.encoded_height(), 76);
    for (int k = 0; k < 10; ++k) vw.write_rgb(pattern_frame(k, w, h).data());
    EXPECT_EQ(vw.frames_written(), 10);
    vw.close();
  }
  VideoDecodeOptions o;
  o.fps = 0;
  const auto frames = read_video(path, o);
  ASSERT_EQ(frames.size(), 10u);
  EXPECT_EQ(frames[0].width, 100);
  EXPECT_EQ(frames[0].height, 76);
  // The padding column repeats the last one: both are in the red strip at the bottom.
  const auto m = mean_rgb(frames[0].rgb, 100, 99, 60, 100, 76);
  EXPECT_GT(m[0], 150);
  EXPECT_LT(m[1], 80);
}

TEST(MediaRoundTrip, VariableFrameRate) {
  if (!have_program("ffmpeg")) GTEST_SKIP() << "ffmpeg not installed";
  TempDir dir;
  const fs::path cfr = dir / "cfr.mp4", vfr = dir / "vfr.mp4";
  write_pattern_video(cfr, 60, 30.0, 128, 64, false);
  // Frames 0-29 at 30 fps (0..1 s), frames 30-59 at 15 fps (1..3 s).
  ASSERT_EQ(run_command("ffmpeg -v error -y -i '" + cfr.string() +
                        "' -vf \"setpts='if(lt(N,30),N/30/TB,(1+(N-30)/15)/TB)'\" -fps_mode passthrough"
                        " -c:v libx264 -preset ultrafast -crf 12 '" + vfr.string() + "'"),
            0);
  // The content lasts 3 s: the last frame (2.933 s) is on screen for 1/15 s. The muxer does
  // not know that last duration and guesses: FFmpeg 5.1 stores 1/30 s (2.967 s in all),
  // 7.1 none (2.933 s). The reader holds a last frame without a duration for one frame at
  // the stream's average rate (20.45 fps here), so both read the 75 frames of 3 s at 25 fps.
  const MediaInfo info = probe(vfr);
  EXPECT_NEAR(info.duration_s, 3.0, 1.0 / 15 + 1e-3);
  const auto frames = read_video(vfr);
  EXPECT_EQ(frames.size(), 75u);
  for (size_t i = 0; i < frames.size(); ++i) {
    const double t = i / 25.0;
    int want = t < 1.0 ? static_cast<int>(i * 30 / 25) : 30 + static_cast<int>((i - 25) * 15 / 25);
    want = std::min(want, 59);
    EXPECT_EQ(decode_pattern(frames[i].rgb, 128, 64), want) << "output frame " << i;
  }
}

}  // namespace
}  // namespace hallo::media::test
