// The bad/edge inputs: each file exists and has exactly the property its name states.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>

#include "core/error.h"
#include "data/synth/loudness.h"
#include "data/synth/synth.h"
#include "media/audio_reader.h"
#include "media/probe.h"
#include "media/video_reader.h"
#include "synth_test_util.h"

namespace hallo::synth {
namespace {

namespace fs = std::filesystem;
using testing::shared_analyzer;

struct SharedVariants {
  testing::TempDir dir;
  std::vector<fs::path> files;
  SharedVariants() { files = make_variants(testing::small_config(dir.path(), 5, 1.2), dir.path()); }
};
const SharedVariants& variants() {
  static SharedVariants v;
  return v;
}
fs::path variant(const std::string& name) { return variants().dir.path() / name; }

// Faces per decoded frame (full-resolution detection), for a few frames spread
// over the clip.
std::vector<std::vector<face::FaceObs>> faces_in(const fs::path& video, int every) {
  std::vector<std::vector<face::FaceObs>> out;
  for (const auto& f : media::read_video(video)) {
    if (f.index % every) continue;
    const cv::Mat rgb(f.height, f.width, CV_8UC3, const_cast<uint8_t*>(f.rgb.data()));
    out.push_back(shared_analyzer().analyze(rgb));
  }
  return out;
}
std::vector<size_t> faces_per_frame(const fs::path& video, int every = 8) {
  std::vector<size_t> n;
  for (const auto& faces : faces_in(video, every)) n.push_back(faces.size());
  return n;
}

TEST(Variants, AllFilesAndTheManifestExist) {
  REQUIRE_SYNTH_PREREQUISITES();
  const std::vector<std::string> names = {
      "bad_truncated.mp4", "bad_truncated_faststart.mp4", "bad_zero.mp4",   "bad_text.mp4", "bad_noaudio.mp4",
      "bad_noface.mp4",    "bad_twofaces.mp4",            "bad_silent.mp4", "edge_30fps_44k_stereo.mp4"};
  ASSERT_EQ(variants().files.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(variants().files[i].filename(), names[i]);
    EXPECT_TRUE(fs::is_regular_file(variant(names[i]))) << names[i];
  }
  const auto manifest = testing::read_json(variant("variants.json"));
  for (const auto& n : names) EXPECT_TRUE(manifest.contains(n)) << n;
  // Only the variants and the manifest: no temp files left behind.
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(variants().dir.path())) ++n, (void)e;
  EXPECT_EQ(n, names.size() + 1);
}

TEST(Variants, BrokenFilesFailToOpenOrDecode) {
  REQUIRE_SYNTH_PREREQUISITES();
  EXPECT_EQ(fs::file_size(variant("bad_zero.mp4")), 0u);
  EXPECT_THROW(media::probe(variant("bad_zero.mp4")), Error);
  EXPECT_THROW(media::probe(variant("bad_text.mp4")), Error);
  // Index at the end, cut off: not even the header is there.
  EXPECT_GT(fs::file_size(variant("bad_truncated.mp4")), 1000u);
  EXPECT_THROW(media::probe(variant("bad_truncated.mp4")), Error);
  // Index up front: the header parses, decoding hits the missing bytes.
  const fs::path fast = variant("bad_truncated_faststart.mp4");
  EXPECT_GT(fs::file_size(fast), 1000u);
  const auto info = media::probe(fast);
  EXPECT_TRUE(info.has_video);
  EXPECT_THROW(media::read_video(fast), Error);
  EXPECT_THROW(media::read_audio(fast), Error);
}

TEST(Variants, NoAudioHasVideoOnly) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto info = media::probe(variant("bad_noaudio.mp4"));
  EXPECT_TRUE(info.has_video);
  EXPECT_FALSE(info.has_audio);
  EXPECT_NEAR(static_cast<double>(info.num_frames), 30, 1);
  EXPECT_THROW(media::read_audio(variant("bad_noaudio.mp4")), Error);
}

TEST(Variants, NoFaceHasNoDetectableFaceButSpeech) {
  REQUIRE_SYNTH_PREREQUISITES();
  for (size_t n : faces_per_frame(variant("bad_noface.mp4"))) EXPECT_EQ(n, 0u);
  const auto audio = media::read_audio(variant("bad_noface.mp4"));
  const auto rms = frame_rms(audio, 16000, 25, 30);
  EXPECT_GT(*std::max_element(rms.begin(), rms.end()), 0.05f);
}

TEST(Variants, TwoFacesSideBySide) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto info = media::probe(variant("bad_twofaces.mp4"));
  EXPECT_EQ(info.width, 512);
  EXPECT_EQ(info.height, 256);
  EXPECT_TRUE(info.has_audio);
  const auto counts = faces_per_frame(variant("bad_twofaces.mp4"));
  ASSERT_FALSE(counts.empty());
  for (size_t n : counts) EXPECT_EQ(n, 2u);
}

TEST(Variants, SilentHasZeroAudioAndAFace) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto info = media::probe(variant("bad_silent.mp4"));
  ASSERT_TRUE(info.has_audio);
  const auto audio = media::read_audio(variant("bad_silent.mp4"));
  EXPECT_NEAR(static_cast<double>(audio.size()), 1.2 * 16000, 0.04 * 16000);
  double acc = 0;
  for (float s : audio) acc += double(s) * s;
  EXPECT_LT(std::sqrt(acc / std::max<size_t>(1, audio.size())), 1e-4);
  // Mouth closed throughout: dlib's opening stays at the portrait's rest value.
  float lo = 1, hi = 0;
  for (const auto& faces : faces_in(variant("bad_silent.mp4"), 3)) {
    ASSERT_EQ(faces.size(), 1u);
    const float m = face::mouth_opening(faces[0].lm);
    lo = std::min(lo, m), hi = std::max(hi, m);
  }
  EXPECT_LT(hi - lo, 0.03f) << lo << " .. " << hi;
}

TEST(Variants, Edge30FpsStereo44kIsAGoodClip) {
  REQUIRE_SYNTH_PREREQUISITES();
  const fs::path p = variant("edge_30fps_44k_stereo.mp4");
  const auto info = media::probe(p);
  EXPECT_NEAR(info.fps, 30.0, 1e-6);
  EXPECT_NEAR(static_cast<double>(info.num_frames), 36, 1);  // 1.2 s at 30 fps
  EXPECT_EQ(info.audio_sample_rate, 44100);
  EXPECT_EQ(info.audio_channels, 2);
  EXPECT_EQ(info.audio_codec, "aac");
  // Accepted after resampling: 25 fps frames and 16 kHz mono of the right length.
  const auto frames = media::read_video(p);
  EXPECT_NEAR(static_cast<double>(frames.size()), 30, 1);
  const auto audio = media::read_audio(p);
  EXPECT_NEAR(static_cast<double>(audio.size()), 1.2 * 16000, 0.05 * 16000);
  const auto rms = frame_rms(audio, 16000, 25, 30);
  EXPECT_GT(*std::max_element(rms.begin(), rms.end()), 0.05f);
  for (size_t n : faces_per_frame(p, 20)) EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace hallo::synth
