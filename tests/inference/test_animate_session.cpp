// `hallo animate`'s session end to end on a tiny random model folder: a real
// portrait (the astronaut) and a synthetic voice -> mp4 with audio, frame count =
// ceil(duration * fps) over several clips; bad inputs name their file and leave
// no video behind.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "inference/animate_job.h"
#include "media/audio_reader.h"
#include "media/probe.h"
#include "media/video_reader.h"
#include "tests/common/temp_dir.h"
#include "tests/inference/tiny_model.h"
#include "trainer/model_folder.h"

namespace hallo::inference {
namespace {

namespace fs = std::filesystem;

// A model folder as `hallo train` writes it, around the tiny random nets.
fs::path write_tiny_model(const fs::path& dir, bool wrong_config = false) {
  trainer::ModelBundle m = testing::tiny_models();
  trainer::ModelFolderParts parts;
  parts.net_config = m.net_config;
  if (wrong_config) parts.net_config["audioproj"]["intermediate_dim"] = 48;  // weights no longer fit
  parts.vae_config = m.vae_config;
  std::vector<trainer::NamedParam> vae;
  for (const auto& it : m.vae->named_parameters()) vae.push_back({it.key(), it.value()});
  for (const auto& it : m.vae->named_buffers()) vae.push_back({it.key(), it.value()});
  parts.vae_weights = dir.parent_path() / (dir.filename().string() + ".vae.safetensors");
  trainer::write_frozen_weights(parts.vae_weights, vae);
  parts.audio = {{"extractor", "logmel"}, {"n_mels", 16}, {"sample_rate", 16000}, {"fps", 25.0}, {"window_radius", 2},
                 {"feature_extractor_id", "logmel:16@25fps"}, {"feature_layers", 1}, {"feature_dim", 16}};
  parts.data = {{"height", 64}, {"width", 64}, {"n_sample_frames", 4}, {"n_motion_frames", 2}, {"fps", 25.0},
                {"prepare", {{"crop_scale", 2.0}}}};
  std::vector<trainer::NamedParam> all;
  for (const auto& it : m.net->named_parameters()) all.push_back({it.key(), it.value()});
  for (const auto& it : m.net->named_buffers()) all.push_back({it.key(), it.value()});
  trainer::write_model_folder(dir, parts, all, 2, 0, nlohmann::json::object());
  return dir;
}

// A voice-like test signal: a 140 Hz buzz with harmonics under a 4 Hz syllable envelope.
std::vector<float> voice(double seconds, float gain = 0.3f) {
  const int rate = 16000;
  std::vector<float> w(static_cast<size_t>(seconds * rate));
  for (size_t i = 0; i < w.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    const double env = 0.5 * (1 - std::cos(2 * M_PI * 4 * t));
    double x = 0;
    for (int h = 1; h <= 5; ++h) x += std::sin(2 * M_PI * 140 * h * t) / h;
    w[i] = static_cast<float>(gain * env * x / 2.3);
  }
  return w;
}

struct SessionTest : ::testing::Test {
  test::TempDir tmp{"hallo_animate"};
  fs::path portrait = fs::path(HALLO_ASSETS_DIR) / "astronaut.png";
  void SetUp() override {
    if (!fs::exists(portrait)) GTEST_SKIP() << "portrait asset missing: " << portrait;
    if (!fs::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")) GTEST_SKIP() << "no dlib model";
  }
  AnimateConfig config() {
    AnimateConfig c = AnimateConfig::defaults();
    c.inference_steps = 2;
    return c;
  }
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }
  // Nothing but the named files in the output folder: no partial or temp files.
  void expect_no_video(const fs::path& out) {
    EXPECT_FALSE(fs::exists(out));
    for (const auto& e : fs::directory_iterator(out.parent_path()))
      EXPECT_EQ(e.path().string().find(".mp4"), std::string::npos) << e.path();
  }
};

TEST_F(SessionTest, LongAudioGivesCeilDurationTimesFpsFramesAndTheAudio) {
  const fs::path model = write_tiny_model(tmp / "model");
  const fs::path wav = tmp / "speech.wav";
  media::write_wav(wav, voice(0.93), 16000);  // ceil(0.93 * 25) = 24 frames = 6 clips of 4
  AnimateSession session(load_model_folder(model), config());
  const fs::path out = tmp / "videos" / "talk.mp4";
  const AnimateResult r = session.run({portrait, wav, out, std::nullopt});
  EXPECT_TRUE(r.face_found);  // the astronaut is found and cropped like training frames
  EXPECT_EQ(r.frames, 24);
  EXPECT_EQ(r.clips, 6);
  const media::MediaInfo info = media::probe(out);
  EXPECT_TRUE(info.has_video);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.display_width(), 64);
  int frames = 0;
  media::VideoReader rd(out, {});
  media::RgbFrame f;
  while (rd.next(f)) ++frames;
  EXPECT_EQ(frames, 24);
  // The audio track covers the video (padded to the last frame's end).
  const auto track = media::read_audio(out, {16000});
  EXPECT_NEAR(static_cast<double>(track.size()) / 16000, 24 / 25.0, 0.05);
  // Same seed, same inputs: the same frames; the second job reuses the loaded model.
  const fs::path again = tmp / "videos" / "again.mp4";
  session.run({portrait, wav, again, std::nullopt});
  media::VideoReader a(out, {}), b(again, {});
  media::RgbFrame fa, fb;
  while (a.next(fa) && b.next(fb)) EXPECT_EQ(fa.rgb, fb.rgb);
}

TEST_F(SessionTest, BadInputsNameTheFileAndLeaveNoVideo) {
  const fs::path model = write_tiny_model(tmp / "model");
  const fs::path wav = tmp / "speech.wav", silent = tmp / "silent.wav", text = tmp / "notes.png";
  media::write_wav(wav, voice(0.3), 16000);
  media::write_wav(silent, std::vector<float>(8000, 0.f), 16000);
  std::ofstream(text) << "not an image";
  AnimateSession session(load_model_folder(model), config());
  fs::create_directories(tmp / "out");
  const fs::path out = tmp / "out" / "talk.mp4";
  auto run = [&](const fs::path& ref, const fs::path& audio) {
    return error_of([&] { session.run({ref, audio, out, std::nullopt}); });
  };
  std::string e = run(tmp / "missing.jpg", wav);
  EXPECT_NE(e.find("missing.jpg"), std::string::npos) << e;
  EXPECT_NE(e.find("no such image"), std::string::npos) << e;
  e = run(text, wav);
  EXPECT_NE(e.find("notes.png"), std::string::npos) << e;
  EXPECT_NE(e.find("not a readable image"), std::string::npos) << e;
  e = run(portrait, tmp / "missing.wav");
  EXPECT_NE(e.find("missing.wav"), std::string::npos) << e;
  e = run(portrait, text);
  EXPECT_NE(e.find("notes.png"), std::string::npos) << e;
  e = run(portrait, silent);
  EXPECT_NE(e.find("silent.wav"), std::string::npos) << e;
  EXPECT_NE(e.find("silent"), std::string::npos) << e;
  expect_no_video(out);

  // Weights that do not fit their config: the folder is named, nothing is written.
  const fs::path bad = write_tiny_model(tmp / "bad_model", /*wrong_config=*/true);
  e = error_of([&] { load_model_folder(bad); });
  EXPECT_NE(e.find("bad_model"), std::string::npos) << e;
  EXPECT_NE(e.find("audioproj"), std::string::npos) << e;
  e = error_of([&] { load_model_folder(tmp / "nowhere"); });
  EXPECT_NE(e.find("no such model folder"), std::string::npos) << e;
}

TEST_F(SessionTest, JobListsResolveRelativePathsAndNameBadLines) {
  const fs::path list = tmp / "jobs.jsonl";
  std::ofstream(list) << R"({"ref": "a.png", "audio": "/abs/b.wav", "out": "o.mp4", "seed": 3})" << "\n\n"
                      << R"({"ref": "a.png", "audio": "b.wav"})" << "\n";
  const std::string e = error_of([&] { read_job_list(list); });
  EXPECT_NE(e.find("jobs.jsonl:3"), std::string::npos) << e;
  EXPECT_NE(e.find("'out'"), std::string::npos) << e;
  std::ofstream(list) << R"({"ref": "a.png", "audio": "/abs/b.wav", "out": "o.mp4", "seed": 3})" << "\n";
  const auto jobs = read_job_list(list);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].ref, tmp.path() / "a.png");
  EXPECT_EQ(jobs[0].audio, fs::path("/abs/b.wav"));
  EXPECT_EQ(jobs[0].seed.value_or(0), 3u);
}

}  // namespace
}  // namespace hallo::inference
