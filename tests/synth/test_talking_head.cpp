// A generated talking head, checked the way the data pipeline will read it:
// libav probe/decode, audio loudness and dlib landmarks on the decoded frames.
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

using testing::read_json;
using testing::shared_analyzer;
using testing::small_config;

// One 2.4 s clip per test process; the tests below only read it.
struct SharedClip {
  testing::TempDir dir;
  SynthResult result;
  SharedClip() { result = make_talking_head(small_config(dir.path()), 3); }
};
const SharedClip& clip() {
  static SharedClip c;
  return c;
}

TEST(TalkingHead, NamesFramesFpsAndAudioLength) {
  REQUIRE_SYNTH_PREREQUISITES();
  const SynthResult& r = clip().result;
  EXPECT_EQ(r.video.filename(), "synth_0003.mp4");
  EXPECT_EQ(r.truth.filename(), "synth_0003.json");
  EXPECT_EQ(r.frames, 60);
  EXPECT_DOUBLE_EQ(r.seconds, 2.4);

  const media::MediaInfo info = media::probe(r.video);
  EXPECT_TRUE(info.has_video);
  ASSERT_TRUE(info.has_audio);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_EQ(info.width, 256);
  EXPECT_EQ(info.height, 256);
  EXPECT_NEAR(info.fps, 25.0, 1e-6);
  EXPECT_NEAR(static_cast<double>(info.num_frames), 60, 1);
  EXPECT_EQ(info.audio_sample_rate, 16000);

  const auto frames = media::read_video(r.video);
  EXPECT_NEAR(static_cast<double>(frames.size()), 60, 1);
  const auto audio = media::read_audio(r.video);
  EXPECT_NEAR(static_cast<double>(audio.size()), 2.4 * 16000, 0.04 * 16000);  // within a frame

  const auto truth = read_json(r.truth);
  EXPECT_EQ(truth["format"], "hallo-synth");
  EXPECT_EQ(truth["video"], "synth_0003.mp4");
  EXPECT_EQ(truth["frames"], 60);
  EXPECT_EQ(truth["fps"], 25.0);
  EXPECT_EQ(truth["sample_rate"], 16000);
  EXPECT_EQ(truth["seed"], 7);
  EXPECT_EQ(truth["mouth"]["opening"].size(), 60u);
  EXPECT_EQ(truth["head"]["frames"].size(), 60u);
  EXPECT_FALSE(truth["speech"]["text"].get<std::string>().empty());
  // Nothing but the pair is left in the output directory (no temp WAVs/MP4s).
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(clip().dir.path())) ++n, (void)e;
  EXPECT_EQ(n, 2);
}

std::vector<float> json_floats(const nlohmann::json& a) {
  std::vector<float> v;
  for (const auto& x : a) v.push_back(x.get<float>());
  return v;
}

TEST(TalkingHead, MouthOpeningFollowsTheDecodedAudio) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto truth = read_json(clip().result.truth);
  const auto opening = json_floats(truth["mouth"]["opening"]);
  const auto rms = frame_rms(media::read_audio(clip().result.video), 16000, 25.0, static_cast<int>(opening.size()));
  const double r = correlation(opening, rms);
  RecordProperty("correlation_x1000", static_cast<int>(r * 1000));
  EXPECT_GT(r, 0.8) << "opening vs audio RMS of the mp4";
  // Speech with pauses: the mouth is both shut and wide open at times.
  EXPECT_EQ(*std::min_element(opening.begin(), opening.end()), 0.0f);
  EXPECT_EQ(*std::max_element(opening.begin(), opening.end()), 1.0f);
  for (float o : opening) {
    EXPECT_GE(o, 0.0f);
    EXPECT_LE(o, 1.0f);
  }
  // Head transforms stay within the configured bounds and do change.
  const HeadMotionOptions ho;
  double span = 0;
  const auto& h = truth["head"]["frames"];
  for (const auto& f : h) {
    EXPECT_LE(std::abs(f["tx"].get<double>()), ho.max_shift_frac * 256 + 1e-6);
    EXPECT_LE(std::abs(f["rot_deg"].get<double>()), ho.max_rot_deg + 1e-6);
    EXPECT_LE(std::abs(f["scale"].get<double>() - 1), ho.max_scale + 1e-6);
    span = std::max(span, std::abs(f["rot_deg"].get<double>() - h[0]["rot_deg"].get<double>()));
  }
  EXPECT_GT(span, 0.01);
}

TEST(TalkingHead, DlibOnDecodedFramesSeesOneFaceAndTheTrueMouth) {
  REQUIRE_SYNTH_PREREQUISITES();
  const auto truth = read_json(clip().result.truth);
  const auto opening = json_floats(truth["mouth"]["opening"]);
  const auto frames = media::read_video(clip().result.video);
  ASSERT_NEAR(static_cast<double>(frames.size()), static_cast<double>(opening.size()), 1);
  std::vector<float> measured, expected;
  for (const auto& f : frames) {
    const cv::Mat rgb(f.height, f.width, CV_8UC3, const_cast<uint8_t*>(f.rgb.data()));
    const auto faces = shared_analyzer().analyze(rgb);
    ASSERT_EQ(faces.size(), 1u) << "frame " << f.index;
    if (f.index >= static_cast<int64_t>(opening.size())) continue;
    measured.push_back(face::mouth_opening(faces[0].lm));
    expected.push_back(opening[f.index]);
  }
  const double r = correlation(measured, expected);
  RecordProperty("correlation_x1000", static_cast<int>(r * 1000));
  EXPECT_GT(r, 0.6) << "dlib mouth_opening vs ground-truth opening";
}

TEST(TalkingHead, SameSeedSameTruthOtherSeedDifferent) {
  REQUIRE_SYNTH_PREREQUISITES();
  testing::TempDir a, b, c;
  const auto ra = make_talking_head(small_config(a.path(), 21, 1.0), 0);
  const auto rb = make_talking_head(small_config(b.path(), 21, 1.0), 0);
  const auto rc = make_talking_head(small_config(c.path(), 22, 1.0), 0);
  const std::string ta = testing::read_text(ra.truth);
  EXPECT_FALSE(ta.empty());
  EXPECT_EQ(ta, testing::read_text(rb.truth));
  EXPECT_NE(ta, testing::read_text(rc.truth));
  // Decoded pictures agree too (same frames in, same encoder settings).
  const auto fa = media::read_video(ra.video), fb = media::read_video(rb.video);
  ASSERT_EQ(fa.size(), fb.size());
  for (size_t i = 0; i < fa.size(); ++i) EXPECT_EQ(fa[i].rgb, fb[i].rgb) << "frame " << i;
}

TEST(TalkingHead, MissingPortraitIsAnErrorNamingIt) {
  testing::TempDir tmp;
  SynthConfig cfg = small_config(tmp.path());
  cfg.portrait = tmp.path() / "missing" / "face.png";
  try {
    make_talking_head(cfg, 0);
    FAIL() << "expected hallo::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(cfg.portrait.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("scripts/install-deps.sh"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(tmp.path() / "synth_0000.mp4"));
}

TEST(TalkingHead, BadConfigIsAnError) {
  testing::TempDir tmp;
  SynthConfig cfg = small_config(tmp.path());
  cfg.seconds = -1;
  EXPECT_THROW(Synthesizer{cfg}, Error);
  cfg = small_config(tmp.path());
  cfg.size = 8;
  EXPECT_THROW(Synthesizer{cfg}, Error);
}

TEST(TalkingHead, DefaultPortraitHonoursTheEnvironment) {
  const char* old = std::getenv("HALLO_ASSETS_DIR");
  const std::string saved = old ? old : "";
  ::setenv("HALLO_ASSETS_DIR", "/some/where", 1);
  EXPECT_EQ(default_portrait_path(), std::filesystem::path("/some/where/astronaut.png"));
  ::unsetenv("HALLO_ASSETS_DIR");
  EXPECT_EQ(default_portrait_path(), testing::astronaut_path());
  if (old) ::setenv("HALLO_ASSETS_DIR", saved.c_str(), 1);
}

}  // namespace
}  // namespace hallo::synth
