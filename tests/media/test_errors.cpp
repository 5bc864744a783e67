// Bad inputs give a hallo::Error naming the file and the reason, never a crash;
// an unfinished VideoWriter leaves nothing on disk.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "media/audio_reader.h"
#include "media/probe.h"
#include "media/video_reader.h"
#include "media/video_writer.h"
#include "media_test_util.h"

namespace hallo::media::test {
namespace {

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every reader on `path` fails with a message naming it and containing `what`.
void expect_all_fail(const fs::path& path, const std::string& what) {
  expect_error([&] { probe(path); }, path, what);
  expect_error([&] { read_video(path); }, path, what);
  expect_error([&] { read_audio(path); }, path, what);
}

TEST(MediaErrors, MissingFile) {
  TempDir dir;
  expect_all_fail(dir / "nope.mp4", "no such file");
}

TEST(MediaErrors, ZeroByteFile) {
  TempDir dir;
  write_bytes(dir / "empty.mp4", "");
  expect_all_fail(dir / "empty.mp4", "not a media file");
}

TEST(MediaErrors, TextRenamedMp4) {
  TempDir dir;
  write_bytes(dir / "notes.mp4", "These are my notes, not a video.\nSecond line.\n");
  expect_all_fail(dir / "notes.mp4", "not a media file");
}

TEST(MediaErrors, TruncatedMp4) {
  TempDir dir;
  const fs::path full = dir / "full.mp4";
  write_pattern_video(full, 40, 25.0, 128, 64, true);
  const std::string bytes = read_bytes(full);
  // Our writer puts the index (moov) first, so the first half opens but its
  // index points past the end.
  const fs::path half = dir / "half.mp4";
  write_bytes(half, bytes.substr(0, bytes.size() / 2));
  expect_error([&] { read_video(half); }, half, "truncated");
  expect_error([&] { read_audio(half); }, half, "truncated");

  // The ffmpeg CLI default puts moov at the end: the first half has no index at all.
  if (!have_program("ffmpeg")) return;
  const fs::path tail = dir / "moov_last.mp4";
  ASSERT_EQ(run_command("ffmpeg -v error -y -i '" + full.string() + "' -c copy '" + tail.string() + "'"), 0);
  const std::string tb = read_bytes(tail);
  ASSERT_NE(tb.find("moov"), std::string::npos);
  ASSERT_GT(tb.find("moov"), tb.size() / 2) << "expected moov at the end";
  const fs::path half2 = dir / "half2.mp4";
  write_bytes(half2, tb.substr(0, tb.size() / 2));
  expect_all_fail(half2, "not a media file or truncated");
}

TEST(MediaErrors, NoAudioStream) {
  TempDir dir;
  const fs::path path = dir / "silent.mp4";
  write_pattern_video(path, 5, 25.0, 64, 64, false);
  EXPECT_FALSE(probe(path).has_audio);
  expect_error([&] { read_audio(path); }, path, "no audio stream");
}

TEST(MediaErrors, NoVideoStream) {
  TempDir dir;
  const fs::path path = dir / "tone.wav";
  write_wav(path, sine(440, 0.3, 16000, 0.2), 16000);
  expect_error([&] { VideoReader r(path); }, path, "no video stream");
  expect_error([&] { read_video(path); }, path, "no video stream");
}

TEST(MediaErrors, GarbageNeverCrashes) {
  TempDir dir;
  const fs::path good = dir / "good.mp4";
  write_pattern_video(good, 20, 25.0, 64, 64, true);
  const std::string bytes = read_bytes(good);
  std::mt19937 rng(1234);
  // Random bytes, then a real file with corrupted payload bytes.
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(rng());
  write_bytes(dir / "noise.mp4", noise);
  EXPECT_THROW(read_video(dir / "noise.mp4"), hallo::Error);
  for (int trial = 0; trial < 6; ++trial) {
    std::string bad = bytes;
    for (int i = 0; i < 40; ++i) bad[rng() % bad.size()] = static_cast<char>(rng());
    const fs::path p = dir / ("bad" + std::to_string(trial) + ".mp4");
    write_bytes(p, bad);
    // Either decodes (damage concealed) or reports a hallo::Error; nothing else.
    try {
      for (const auto& f : read_video(p)) ASSERT_EQ(f.rgb.size(), static_cast<size_t>(f.width) * f.height * 3);
    } catch (const hallo::Error&) {
    }
    try {
      read_audio(p);
    } catch (const hallo::Error&) {
    }
  }
}

TEST(MediaErrors, WriterWithoutCloseLeavesNothing) {
  TempDir dir;
  const fs::path path = dir / "unfinished.mp4";
  {
    EncodeOptions o;
    o.preset = "ultrafast";
    VideoWriter w(path, 64, 64, o);
    for (int k = 0; k < 3; ++k) w.write_rgb(pattern_frame(k, 64, 64).data());
    w.set_audio(sine(440, 0.3, 16000, 0.12), 16000);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(MediaErrors, FailedCloseKeepsOldTarget) {
  TempDir dir;
  const fs::path path = dir / "out.mp4";
  write_bytes(path, "old contents");
  VideoWriter w(path, 64, 64);
  expect_error([&] { w.close(); }, path, "no frames written");
  EXPECT_EQ(read_bytes(path), "old contents");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
}

TEST(MediaErrors, WriterBadArguments) {
  TempDir dir;
  expect_error([&] { VideoWriter w(dir / "missing_dir" / "x.mp4", 64, 64); }, dir / "missing_dir" / "x.mp4",
               "does not exist");
  expect_error([&] { VideoWriter w(dir / "x.unknownext", 64, 64); }, dir / "x.unknownext",
               "unknown output container");
  EncodeOptions o;
  o.preset = "not-a-preset";
  expect_error([&] { VideoWriter w(dir / "x.mp4", 64, 64, o); }, dir / "x.mp4", "preset");
  expect_error([&] { write_wav(dir / "nodir" / "a.wav", {0.f}, 16000); }, dir / "nodir" / "a.wav",
               "does not exist");
}

}  // namespace
}  // namespace hallo::media::test
