// audio_rms_per_frame, cut_clips, config JSON and the small statistics helpers.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "data/clean/clean.h"
#include "data/clean/signal_stats.h"

namespace hc = hallo::clean;

TEST(CleanAudio, RmsPerFrameOnBurst) {
  // 16 kHz, 25 fps -> 640 samples per frame. Silence, then a 0.5-amplitude
  // square burst over frames [3, 6), then a sine of amplitude 0.4 over [6, 8).
  const int sr = 16000;
  std::vector<float> audio(640 * 8, 0.f);
  for (int s = 640 * 3; s < 640 * 6; ++s) audio[s] = (s % 2) ? 0.5f : -0.5f;
  for (int s = 640 * 6; s < 640 * 8; ++s) audio[s] = 0.4f * std::sin(2 * M_PI * 440.0 * s / sr);
  const auto rms = hc::audio_rms_per_frame(audio, sr, 25, 10);
  ASSERT_EQ(rms.size(), 10u);
  for (int i = 0; i < 3; ++i) EXPECT_FLOAT_EQ(rms[i], 0.f) << i;
  for (int i = 3; i < 6; ++i) EXPECT_NEAR(rms[i], 0.5f, 1e-6) << i;
  // 640 samples = 17.6 periods of 440 Hz: RMS within 2% of 0.4 / sqrt(2).
  for (int i = 6; i < 8; ++i) EXPECT_NEAR(rms[i], 0.4f / std::sqrt(2.f), 0.006f) << i;
  // Frames past the end of the audio are silent, not garbage.
  EXPECT_FLOAT_EQ(rms[8], 0.f);
  EXPECT_FLOAT_EQ(rms[9], 0.f);
}

TEST(CleanAudio, RmsPerFrameFractionalSpanAndPartialFrame) {
  // 16 kHz at 30 fps = 533.33 samples per frame: rounded spans [0, 533),
  // [533, 1067), [1067, 1600) tile the signal without gaps.
  std::vector<float> ones(1000, 1.f);
  const auto rms = hc::audio_rms_per_frame(ones, 16000, 30, 3);
  ASSERT_EQ(rms.size(), 3u);
  EXPECT_FLOAT_EQ(rms[0], 1.f);
  // Frame 1 covers [533, 1067): 467 real samples of 534.
  EXPECT_NEAR(rms[1], std::sqrt(467.f / 534.f), 1e-6);
  EXPECT_FLOAT_EQ(rms[2], 0.f);
  EXPECT_TRUE(hc::audio_rms_per_frame({}, 16000, 25, 0).empty());
  EXPECT_THROW(hc::audio_rms_per_frame(ones, 0, 25, 3), hallo::Error);
  EXPECT_THROW(hc::audio_rms_per_frame(ones, 16000, 0, 3), hallo::Error);
}

TEST(CleanAudio, AudioFrameCount) {
  EXPECT_EQ(hc::audio_frame_count(16000 * 4, 16000, 25), 100);
  EXPECT_EQ(hc::audio_frame_count(16000 * 4 + 319, 16000, 25), 100);  // < half a frame
  EXPECT_EQ(hc::audio_frame_count(16000 * 4 + 321, 16000, 25), 101);
  EXPECT_EQ(hc::audio_frame_count(0, 16000, 25), 0);
  EXPECT_THROW(hc::audio_frame_count(10, -1, 25), hallo::Error);
}

namespace {
std::vector<hc::Segment> segs(std::initializer_list<std::pair<int, int>> ranges) {
  std::vector<hc::Segment> out;
  for (auto [b, e] : ranges) {
    hc::Segment s;
    s.begin = b;
    s.end = e;
    out.push_back(s);
  }
  return out;
}
}  // namespace

TEST(CleanClips, CountsAndBounds) {
  const auto kept = segs({{0, 50}, {60, 74}, {100, 113}});
  // Non-overlapping 14-frame clips: 3 in [0,50), 1 in [60,74), none in [100,113).
  const auto clips = hc::cut_clips(kept, 14, 0);
  const std::vector<std::pair<int, int>> want{{0, 14}, {14, 28}, {28, 42}, {60, 74}};
  EXPECT_EQ(clips, want);

  // Stride 5: starts 0,5,...,35 (35 + 14 = 49 <= 50), then 60.
  const auto strided = hc::cut_clips(kept, 14, 5);
  ASSERT_EQ(strided.size(), 9u);
  EXPECT_EQ(strided.front(), std::make_pair(0, 14));
  EXPECT_EQ(strided[7], std::make_pair(35, 49));
  EXPECT_EQ(strided.back(), std::make_pair(60, 74));
  for (const auto& [b, e] : strided) {
    EXPECT_EQ(e - b, 14);
    bool inside = false;
    for (const auto& s : kept) inside |= (b >= s.begin && e <= s.end);
    EXPECT_TRUE(inside) << b << "," << e;
  }
  EXPECT_TRUE(hc::cut_clips({}, 14, 0).empty());
  EXPECT_TRUE(hc::cut_clips(kept, 1000000000, 0).empty());
  EXPECT_THROW(hc::cut_clips(kept, 0, 0), hallo::Error);
  EXPECT_THROW(hc::cut_clips(kept, 14, -1), hallo::Error);
}

TEST(CleanClips, RemaindersOfAtLeastTheMinimumAreKept) {
  // 1.5 x clip_length: the whole clip plus the half-length remainder.
  EXPECT_EQ(hc::cut_clips(segs({{0, 96}}), 64, 0, 20), (std::vector<std::pair<int, int>>{{0, 64}, {64, 96}}));
  // A segment shorter than one clip (a 2 s video at 25 fps) is one clip when long enough.
  EXPECT_EQ(hc::cut_clips(segs({{0, 50}}), 64, 0, 20), (std::vector<std::pair<int, int>>{{0, 50}}));
  // Below the minimum the remainder is dropped; min 0 keeps the old whole-clips-only rule.
  EXPECT_EQ(hc::cut_clips(segs({{0, 83}}), 64, 0, 20), (std::vector<std::pair<int, int>>{{0, 64}}));
  EXPECT_EQ(hc::cut_clips(segs({{0, 96}}), 64, 0, 0), (std::vector<std::pair<int, int>>{{0, 64}}));
  // Exactly the minimum is enough; every kept frame of every segment is in one clip.
  const auto c = hc::cut_clips(segs({{0, 84}, {100, 120}, {130, 139}}), 64, 0, 20);
  EXPECT_EQ(c, (std::vector<std::pair<int, int>>{{0, 64}, {64, 84}, {100, 120}}));
  // With a stride, the remainder starts where the last whole clip ends.
  EXPECT_EQ(hc::cut_clips(segs({{0, 125}}), 40, 30, 20).back(), std::make_pair(100, 125));
}

TEST(CleanConfigJson, RoundTripAndErrors) {
  hc::CleanConfig c;
  c.max_yaw = 30;
  c.min_faces_bad_run = 5;
  const auto back = hc::clean_config_from_json(hc::clean_config_to_json(c), "cfg.json");
  EXPECT_EQ(back.max_yaw, 30);
  EXPECT_EQ(back.min_faces_bad_run, 5);
  EXPECT_EQ(back.fps, 25);

  const auto partial = hc::clean_config_from_json({{"min_segment_s", 3.5}}, "cfg.json");
  EXPECT_EQ(partial.min_segment_s, 3.5);
  EXPECT_EQ(partial.max_camera_motion, hc::CleanConfig{}.max_camera_motion);

  auto message = [](const nlohmann::json& j) {
    try {
      hc::clean_config_from_json(j, "cfg.json");
    } catch (const hallo::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{"max_yaww", 3}}).find("cfg.json: unknown clean config field 'max_yaww'"), std::string::npos);
  EXPECT_NE(message({{"max_yaw", "wide"}}).find("'max_yaw' must be a number"), std::string::npos);
  EXPECT_NE(message({{"min_faces_bad_run", 2.5}}).find("must be an integer"), std::string::npos);
  EXPECT_NE(message({{"min_faces_bad_run", 1e12}}).find("must be an integer"), std::string::npos);
  EXPECT_NE(message({{"min_faces_bad_run", 10000000000LL}}).find("out of range"), std::string::npos);
  EXPECT_NE(message({{"fps", 0}}).find("'fps' must be > 0"), std::string::npos);
  EXPECT_NE(message({{"min_voice_ratio", 1.5}}).find("min_voice_ratio"), std::string::npos);
  EXPECT_NE(message(nlohmann::json::array()).find("must be a JSON object"), std::string::npos);
}

TEST(CleanStats, PearsonAndLag) {
  std::vector<float> a{0, 1, 0, 2, 0, 3, 1, 0, 2, 1, 0, 0, 3, 1};
  std::vector<float> neg(a.size()), flat(a.size(), 0.25f), shifted(a.size(), 0.f);
  for (size_t i = 0; i < a.size(); ++i) neg[i] = 1 - 2 * a[i];
  // shifted[i + 2] = a[i]: the audio lags the mouth by two frames.
  for (size_t i = 0; i + 2 < a.size(); ++i) shifted[i + 2] = a[i];
  const int n = static_cast<int>(a.size());
  EXPECT_NEAR(hc::detail::pearson(a.data(), a.data(), n), 1.0, 1e-9);
  EXPECT_NEAR(hc::detail::pearson(a.data(), neg.data(), n), -1.0, 1e-9);
  EXPECT_EQ(hc::detail::pearson(a.data(), flat.data(), n), 0.0);
  EXPECT_EQ(hc::detail::pearson(a.data(), a.data(), 1), 0.0);

  const auto lc = hc::detail::best_lagged_corr(a, shifted, 0, n, 2);
  EXPECT_EQ(lc.lag, 2);
  EXPECT_NEAR(lc.corr, 1.0, 1e-9);
  const auto same = hc::detail::best_lagged_corr(a, a, 0, n, 2);
  EXPECT_EQ(same.lag, 0);
  // Out of search range: lag 2 is not found with max_lag 1.
  EXPECT_LT(hc::detail::best_lagged_corr(a, shifted, 0, n, 1).corr, 0.9);
}

TEST(CleanStats, WindowMedianIgnoresNanAndSpikes) {
  const float nan = std::nanf("");
  const std::vector<float> v{0, 0, 9, 0, 0, 0, 5, 5, 5, 0, 0};
  const auto m = hc::detail::window_median(v, 0, 11, 5);
  // A lone spike disappears; a run of three survives exactly where it is.
  const std::vector<float> want{0, 0, 0, 0, 0, 0, 5, 5, 5, 0, 0};
  EXPECT_EQ(m, want);
  // NaN (unmeasured) entries are skipped, not ranked.
  const auto n = hc::detail::window_median({nan, nan, 4, nan}, 0, 4, 5);
  EXPECT_EQ(n, std::vector<float>({4, 4, 4, 4}));
  EXPECT_EQ(hc::detail::window_median({nan, nan}, 0, 2, 3), std::vector<float>({0, 0}));
  // The window stays inside [begin, end); entries outside are 0.
  const auto part = hc::detail::window_median({0, 0, 0, 7, 0, 0}, 3, 4, 5);
  EXPECT_EQ(part, std::vector<float>({0, 0, 0, 7, 0, 0}));
}
