// clean_video on synthetic per-frame observations: one rule at a time, with the
// exact frame ranges it must keep and reject.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "data/clean/clean.h"
#include "tests/clean/synthetic.h"

namespace hc = hallo::clean;
using hallo::clean::test::envelope;
using hallo::clean::test::Video;

namespace {

std::vector<std::pair<int, int>> kept_ranges(const hc::CleanResult& r) {
  std::vector<std::pair<int, int>> out;
  for (const auto& s : r.kept) out.emplace_back(s.begin, s.end);
  return out;
}

using Ranges = std::vector<std::pair<int, int>>;

// Every frame is in exactly one kept segment or one (non-empty) rejection.
void expect_partition(const hc::CleanResult& r, int n) {
  std::vector<int> cover(n, 0);
  for (const auto& s : r.kept)
    for (int i = s.begin; i < s.end; ++i) ++cover[i];
  for (const auto& x : r.rejected)
    for (int i = x.begin; i < x.end; ++i) ++cover[i];
  for (int i = 0; i < n; ++i) EXPECT_EQ(cover[i], 1) << "frame " << i;
  for (size_t i = 1; i < r.rejected.size(); ++i) EXPECT_LE(r.rejected[i - 1].begin, r.rejected[i].begin);
}

}  // namespace

TEST(CleanRules, GoodVideoKeptWholeWithScores) {
  const Video v(100);
  const auto r = v.clean();
  EXPECT_TRUE(r.rejected.empty());
  ASSERT_EQ(kept_ranges(r), Ranges({{0, 100}}));
  const auto& s = r.kept[0].scores;
  EXPECT_NEAR(s.at("lip_audio_corr").get<double>(), 1.0, 1e-6);
  EXPECT_EQ(s.at("lip_audio_lag").get<int>(), 0);
  EXPECT_NEAR(s.at("mean_yaw").get<double>(), 5.0, 0.2);
  EXPECT_DOUBLE_EQ(s.at("voice_ratio").get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(s.at("seconds").get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(s.at("camera_motion").get<double>(), 0.0);
  EXPECT_LT(s.at("face_motion").get<double>(), 0.02);
  const auto j = hc::result_to_json(r);
  EXPECT_EQ(j.at("kept").at(0).at("end").get<int>(), 100);
}

TEST(CleanRules, ProfileRunRejectedWithExactRange) {
  Video v(200);
  for (int i = 80; i < 95; ++i) v.frames[i].yaw = (i % 2) ? 70.f : -60.f;
  v.frames[30].yaw = 45.f;  // exactly at the limit: still frontal enough
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].reason, "profile");
  EXPECT_EQ(r.rejected[0].begin, 80);
  EXPECT_EQ(r.rejected[0].end, 95);
  EXPECT_FLOAT_EQ(r.rejected[0].detail.at("max_abs_yaw").get<float>(), 70.f);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 80}, {95, 200}}));
  expect_partition(r, v.n());
}

TEST(CleanRules, ShortFaceDropoutInterpolated) {
  Video v(100);
  for (int i : {50, 51}) {
    v.frames[i].num_faces = 0;
    v.frames[i].face_box = cv::Rect2f();  // what a detector reports: nothing
    v.frames[i].yaw = 0;
  }
  // A 2-frame second face (someone walks past) is tolerated the same way,
  // even though the "largest face" box jumps to the passer-by.
  for (int i : {70, 71}) {
    v.frames[i].num_faces = 2;
    v.frames[i].face_box = cv::Rect2f(20, 20, 300, 300);
  }
  const auto r = v.clean();
  EXPECT_TRUE(r.rejected.empty()) << hc::result_to_json(r).dump();
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 100}}));
}

TEST(CleanRules, LongFaceDropoutSplits) {
  Video v(200);
  for (int i = 100; i < 110; ++i) v.frames[i].num_faces = 0;
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].reason, "no face");
  EXPECT_EQ(r.rejected[0].begin, 100);
  EXPECT_EQ(r.rejected[0].end, 110);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 100}, {110, 200}}));

  // The tolerance is a config value: with min_faces_bad_run = 11 it is bridged.
  hc::CleanConfig cfg;
  cfg.min_faces_bad_run = 11;
  EXPECT_EQ(kept_ranges(v.clean(cfg)), Ranges({{0, 200}}));
}

TEST(CleanRules, TwoFacesRejected) {
  Video v(200);
  for (int i = 60; i < 140; ++i) v.frames[i].num_faces = 2;
  for (int i = 140; i < 143; ++i) v.frames[i].num_faces = 0;  // then both leave for 3 frames
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 2u) << hc::result_to_json(r).dump();
  EXPECT_EQ(r.rejected[0].reason, "two faces");
  EXPECT_EQ(r.rejected[0].begin, 60);
  EXPECT_EQ(r.rejected[0].end, 140);
  EXPECT_EQ(r.rejected[1].reason, "no face");
  EXPECT_EQ(r.rejected[1].begin, 140);
  EXPECT_EQ(r.rejected[1].end, 143);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 60}, {143, 200}}));
  expect_partition(r, v.n());
}

TEST(CleanRules, LipAudioCorrelation) {
  // Correlated (with the audio one frame late, as after a codec delay): kept.
  Video good(150, 7);
  std::rotate(good.rms.rbegin(), good.rms.rbegin() + 1, good.rms.rend());
  const auto kept = good.clean();
  ASSERT_EQ(kept_ranges(kept), Ranges({{0, 150}}));
  EXPECT_EQ(kept.kept[0].scores.at("lip_audio_lag").get<int>(), 1);
  EXPECT_GT(kept.kept[0].scores.at("lip_audio_corr").get<double>(), 0.95);

  auto lip_rejected = [](const Video& v) {
    const auto r = v.clean();
    EXPECT_TRUE(r.kept.empty());
    EXPECT_EQ(r.rejected.size(), 1u);
    if (r.rejected.size() != 1) return 99.0;
    EXPECT_EQ(r.rejected[0].reason, "lip-audio");
    EXPECT_EQ(r.rejected[0].begin, 0);
    EXPECT_EQ(r.rejected[0].end, v.n());
    return r.rejected[0].detail.at("corr").get<double>();
  };
  // Anti-correlated: the mouth closes when the voice is loud.
  Video anti(150, 7);
  for (auto& f : anti.frames) f.mouth_open = 0.34f - f.mouth_open;
  EXPECT_LT(lip_rejected(anti), 0.0);
  // Voice-over on a still face: no mouth movement at all (the mouth-motion floor).
  Video still(150, 7);
  for (auto& f : still.frames) f.mouth_open = 0.05f;
  {
    const auto r = still.clean();
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].reason, "lip-audio");
    EXPECT_EQ(r.rejected[0].detail.at("mouth_std").get<double>(), 0.0);
  }
  // Landmark jitter that happens to follow the voice: correlated, but far too small to be speech.
  Video jitter(150, 7);
  for (size_t i = 0; i < jitter.frames.size(); ++i) jitter.frames[i].mouth_open = 0.05f + 0.004f * jitter.rms[i];
  {
    const auto r = jitter.clean();
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].reason, "lip-audio");
    EXPECT_LT(r.rejected[0].detail.at("mouth_std").get<double>(), 0.004);
    hc::CleanConfig cfg;
    cfg.min_mouth_std = 0;  // without the floor the correlation alone would keep it
    EXPECT_EQ(jitter.clean(cfg).kept.size(), 1u);
  }
  // Mouth moving to a different, independent soundtrack (30 s).
  Video dubbed(750, 7);
  const auto other = envelope(750, 12345);
  for (int i = 0; i < 750; ++i) dubbed.frames[i].mouth_open = 0.02f + 0.3f * other[i];
  const double c = lip_rejected(dubbed);
  EXPECT_LT(std::abs(c), 0.2);
}

TEST(CleanRules, SilentAudioRejected) {
  Video v(100);
  for (float& x : v.rms) x *= 0.02f;  // below the -40 dBFS floor throughout
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_EQ(r.rejected[0].reason, "silent");
  EXPECT_DOUBLE_EQ(r.rejected[0].detail.at("voice_ratio").get<double>(), 0.0);
  EXPECT_TRUE(r.kept.empty());

  // Speech over 40% of the frames passes the 30% voice ratio.
  Video half(100);
  for (int i = 40; i < 100; ++i) {
    half.rms[i] = 0.001f;
    half.frames[i].mouth_open = 0.02f;  // silent: the mouth rests
  }
  const auto h = half.clean();
  ASSERT_EQ(h.kept.size(), 1u) << hc::result_to_json(h).dump();
  EXPECT_DOUBLE_EQ(h.kept[0].scores.at("voice_ratio").get<double>(), 0.4);
}

TEST(CleanRules, AvLengthMismatch) {
  const Video v(100);
  for (int audio_frames : {104, 96}) {
    const auto r = hc::clean_video(v.frames, v.motion, v.rms, audio_frames, {});
    EXPECT_TRUE(r.kept.empty());
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].reason, "av length mismatch");
    EXPECT_EQ(r.rejected[0].begin, 0);
    EXPECT_EQ(r.rejected[0].end, 100);
    EXPECT_EQ(r.rejected[0].detail.at("audio_frames").get<int>(), audio_frames);
  }
  for (int audio_frames : {103, 97}) {
    const auto r = hc::clean_video(v.frames, v.motion, v.rms, audio_frames, {});
    EXPECT_EQ(kept_ranges(r), Ranges({{0, 100}})) << audio_frames;
  }
}

TEST(CleanRules, MinSegmentLength) {
  // min_segment_s 2 s at 25 fps = 50 frames: 49 is too short, 50 is kept.
  hc::CleanConfig two;
  two.min_segment_s = 2.0;
  const auto r49 = Video(49).clean(two);
  ASSERT_EQ(r49.rejected.size(), 1u);
  EXPECT_EQ(r49.rejected[0].reason, "too short");
  EXPECT_EQ(r49.rejected[0].end, 49);
  EXPECT_EQ(kept_ranges(Video(50).clean(two)), Ranges({{0, 50}}));
  // The default, 0.8 s, is prepare's 20-frame minimum clip.
  EXPECT_EQ(Video(19).clean().rejected.size(), 1u);
  EXPECT_EQ(kept_ranges(Video(20).clean()), Ranges({{0, 20}}));

  hc::CleanConfig cfg;
  cfg.min_segment_s = 1.0;
  EXPECT_EQ(kept_ranges(Video(25).clean(cfg)), Ranges({{0, 25}}));
  cfg.fps = 50;  // the same 25 frames are now half a second
  EXPECT_TRUE(Video(25).clean(cfg).kept.empty());

  // A good stretch cut short by a profile turn is dropped as too short.
  Video v(120);
  for (int i = 40; i < 60; ++i) v.frames[i].yaw = 80;
  const auto r = v.clean(two);
  ASSERT_EQ(r.rejected.size(), 2u);
  EXPECT_EQ(r.rejected[0].reason, "too short");
  EXPECT_EQ(r.rejected[0].end, 40);
  EXPECT_EQ(r.rejected[1].reason, "profile");
  EXPECT_EQ(kept_ranges(r), Ranges({{60, 120}}));
}

TEST(CleanRules, FaceMotionRun) {
  Video v(200);
  // The head darts sideways by 0.2 face sizes per frame over frames [100, 120).
  float x = 0;
  for (int i = 0; i < 200; ++i) {
    if (i >= 100 && i < 120) x += 0.2f * 160;
    v.frames[i].face_box.x += x;
  }
  v.frames[30].face_box.x += 80;  // a single-frame detector glitch is not motion
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 1u) << hc::result_to_json(r).dump();
  EXPECT_EQ(r.rejected[0].reason, "face motion");
  EXPECT_EQ(r.rejected[0].begin, 100);
  EXPECT_EQ(r.rejected[0].end, 120);
  EXPECT_NEAR(r.rejected[0].detail.at("max_face_motion").get<double>(), 0.2, 0.01);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 100}, {120, 200}}));
}

TEST(CleanRules, CameraMotionFromStats) {
  Video v(200);
  v.motion.scene_dist.assign(200, 0.05f);
  v.motion.camera_motion.assign(200, 0.3f);
  for (int i = 60; i < 80; ++i) v.motion.camera_motion[i] = 5.f;
  v.motion.camera_motion[150] = 9.f;  // one bad measurement
  const auto r = v.clean();
  ASSERT_EQ(r.rejected.size(), 1u) << hc::result_to_json(r).dump();
  EXPECT_EQ(r.rejected[0].reason, "camera motion");
  EXPECT_EQ(r.rejected[0].begin, 60);
  EXPECT_EQ(r.rejected[0].end, 80);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 60}, {80, 200}}));
  EXPECT_NEAR(r.kept[1].scores.at("camera_motion").get<double>(), (119 * 0.3 + 9) / 120, 1e-4);
}

TEST(CleanRules, SceneCutsFromStats) {
  Video v(200);
  v.motion.scene_dist.assign(200, 0.1f);
  v.motion.camera_motion.assign(200, 0.f);
  v.motion.scene_dist[60] = 0.9f;  // hard cut between frames 59 and 60
  // A dissolve: every frame of [110, 113) differs from its predecessor, and so
  // does 113, the first frame of the new shot.
  for (int i = 110; i <= 113; ++i) v.motion.scene_dist[i] = 0.6f;
  // Motion measured across a cut is garbage (LK between unrelated images); it
  // must not reject the first frame of the new shot. Window 1 = no median.
  v.motion.camera_motion[60] = 40.f;
  v.motion.camera_motion[113] = 40.f;
  hc::CleanConfig cfg;
  cfg.motion_window = 1;
  const auto r = v.clean(cfg);
  ASSERT_EQ(r.rejected.size(), 2u) << hc::result_to_json(r).dump();
  EXPECT_EQ(r.rejected[0].reason, "scene cut");
  EXPECT_EQ(r.rejected[0].begin, 60);
  EXPECT_EQ(r.rejected[0].end, 60);
  EXPECT_EQ(r.rejected[1].reason, "scene cut");
  EXPECT_EQ(r.rejected[1].begin, 110);
  EXPECT_EQ(r.rejected[1].end, 113);
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 60}, {60, 110}, {113, 200}}));
  expect_partition(r, v.n());
}

TEST(CleanRules, FaceScaleChangeSplitsSegment) {
  // The speaker leans in: face size grows from 100 to 200 px over 12 s.
  Video v(300);
  for (int i = 0; i < 300; ++i) {
    const float s = 100.f + 100.f * i / 299.f;
    v.frames[i].face_box = cv::Rect2f(300 - s / 2, 200 - s / 2, s, s);
  }
  const auto r = v.clean();
  EXPECT_TRUE(r.rejected.empty()) << hc::result_to_json(r).dump();
  ASSERT_GE(r.kept.size(), 3u);  // 2x growth needs at least 3 parts of <= 1.3x
  EXPECT_EQ(r.kept.front().begin, 0);
  EXPECT_EQ(r.kept.back().end, 300);
  for (size_t i = 0; i < r.kept.size(); ++i) {
    if (i) {
      EXPECT_EQ(r.kept[i].begin, r.kept[i - 1].end);
    }
    EXPECT_LE(r.kept[i].scores.at("face_scale_change").get<double>(), 0.3);
    EXPECT_GT(r.kept[i].scores.at("face_scale_change").get<double>(), 0.1);
  }
}

TEST(CleanRules, MixedVideoPartitionsEveryFrame) {
  hc::CleanConfig two_s;  // the 1.2 s run at 530..560 is "too short" under a 2 s minimum
  two_s.min_segment_s = 2.0;
  Video v(600, 3);
  v.motion.scene_dist.assign(600, 0.1f);
  v.motion.camera_motion.assign(600, 0.5f);
  v.motion.scene_dist[300] = 0.95f;
  for (int i = 50; i < 70; ++i) v.frames[i].yaw = -60;
  for (int i = 120; i < 125; ++i) v.frames[i].num_faces = 0;
  for (int i = 200; i < 230; ++i) v.motion.camera_motion[i] = 6;
  for (int i = 380; i < 400; ++i) v.frames[i].num_faces = 2;
  for (int i = 400; i < 520; ++i) v.rms[i] = 0.002f;
  for (int i = 520; i < 530; ++i) v.frames[i].num_faces = 3;
  for (int i = 560; i < 600; ++i) v.frames[i].yaw = 88;
  const auto r = v.clean(two_s);
  expect_partition(r, v.n());
  std::vector<std::string> reasons;
  for (const auto& x : r.rejected) reasons.push_back(x.reason);
  const std::vector<std::string> want{"profile",   "no face", "camera motion", "scene cut", "two faces",
                                      "silent",    "two faces", "too short",   "profile"};
  EXPECT_EQ(reasons, want) << hc::result_to_json(r).dump();
  EXPECT_EQ(kept_ranges(r), Ranges({{0, 50}, {70, 120}, {125, 200}, {230, 300}, {300, 380}}));
}

TEST(CleanRules, BadInputsThrow) {
  const Video v(50);
  std::vector<float> short_rms(v.rms.begin(), v.rms.end() - 1);
  EXPECT_THROW(hc::clean_video(v.frames, v.motion, short_rms, 50, {}), hallo::Error);
  hc::FrameStats partial;
  partial.scene_dist.assign(50, 0.f);
  EXPECT_THROW(hc::clean_video(v.frames, partial, v.rms, 50, {}), hallo::Error);
  hc::CleanConfig bad;
  bad.motion_window = 0;
  EXPECT_THROW(hc::clean_video(v.frames, v.motion, v.rms, 50, bad), hallo::Error);
  // Empty video with matching (empty) audio: nothing kept, nothing to reject.
  const auto r = hc::clean_video({}, {}, {}, 0, {});
  EXPECT_TRUE(r.kept.empty());
  EXPECT_TRUE(r.rejected.empty());
}
