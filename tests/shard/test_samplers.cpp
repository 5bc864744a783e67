// Stage-1 / stage-2 samplers over a small synthetic raw-storage dataset, where
// every pixel and audio value identifies its clip and frame exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "tests/common/error_message.h"
#include "core/error.h"
#include "data/dataset/samplers.h"
#include "data/shard/shard_writer.h"
#include "synthetic.h"

namespace hallo::data {
namespace {

namespace fs = std::filesystem;

const std::vector<int> kFrames = {40, 16, 50, 20, 64, 33};  // clip c has kFrames[c] frames

int u8(const at::Tensor& v) { return static_cast<int>(std::lround((v.item<float>() + 1.0f) * 127.5f)); }
int red(const at::Tensor& img) { return u8(img[0][5][7]); }   // img [3,H,W]
int blue(const at::Tensor& img) { return u8(img[2][9][3]); }

void expect_range(const at::Tensor& t, float lo, float hi, const char* what) {
  EXPECT_GE(t.min().item<float>(), lo) << what;
  EXPECT_LE(t.max().item<float>(), hi) << what;
}

fs::path write(const std::string& name, const std::vector<ClipRecord>& clips) {
  const fs::path dir = testing::fresh_dir(name);
  ShardWriterConfig cfg;
  cfg.frames = FrameStorage::Raw;
  cfg.clips_per_shard = 4;
  ShardWriter w(dir, cfg);
  for (const auto& c : clips) w.add(c);
  w.finish();
  return dir;
}

class ShardSamplers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (size_t c = 0; c < kFrames.size(); ++c)
      clips_.push_back(testing::make_clip("clip" + std::to_string(c), static_cast<int>(c),
                                          testing::with_frames(kFrames[c])));
    reader_ = std::make_shared<ShardReader>(write("samplers", clips_));
  }
  static void TearDownTestSuite() {
    reader_.reset();
    clips_.clear();
  }
  static std::vector<ClipRecord> clips_;
  static std::shared_ptr<ShardReader> reader_;
};
std::vector<ClipRecord> ShardSamplers::clips_;
std::shared_ptr<ShardReader> ShardSamplers::reader_;

TEST_F(ShardSamplers, Stage1ShapesValuesAndReferenceDistance) {
  Stage1Sampler s(reader_, SamplerConfig{});
  ASSERT_EQ(s.size(), 4u);  // clips with fewer than 31 frames are skipped
  for (size_t c : s.clips()) EXPECT_GE(kFrames[c], 31);
  bool ref_first = false, ref_last = false;
  for (int round = 0; round < 12; ++round) {
    const Stage1Batch b = s.next(3);
    ASSERT_EQ(b.ref_image.sizes(), (at::IntArrayRef{3, 3, 64, 64}));
    ASSERT_EQ(b.target_image.sizes(), (at::IntArrayRef{3, 3, 64, 64}));
    ASSERT_EQ(b.face_region.sizes(), (at::IntArrayRef{3, 1, 64, 64}));
    ASSERT_EQ(b.face_emb.sizes(), (at::IntArrayRef{3, 512}));
    for (int l = 0; l < 4; ++l) {
      const int64_t s_l = 64 >> (3 + l);
      ASSERT_EQ(b.lip[l].sizes(), (at::IntArrayRef{3, 1, s_l, s_l}));
      ASSERT_EQ(b.pose[l].sizes(), (at::IntArrayRef{3, 1, s_l, s_l}));
      expect_range(b.face[l], 0, 1, "face mask");
    }
    expect_range(b.ref_image, -1, 1, "ref");
    expect_range(b.face_region, 0, 1, "face region");
    // No clip has VAE latents: the batch has none.
    EXPECT_FALSE(b.ref_latent_mean.defined() || b.ref_latent_std.defined() ||
                 b.target_latent_mean.defined() || b.target_latent_std.defined());
    for (int64_t i = 0; i < 3; ++i) {
      const SampleInfo& info = b.info[static_cast<size_t>(i)];
      const ClipRecord& clip = clips_[info.clip];
      const int ref = info.ref_frame, tgt = info.frames.at(0);
      ASSERT_GE(std::abs(ref - tgt), 30) << "clip " << info.clip;
      ASSERT_TRUE(ref >= 0 && tgt >= 0 && ref < clip.num_frames && tgt < clip.num_frames);
      ref_first |= ref < tgt;
      ref_last |= ref > tgt;
      EXPECT_EQ(blue(b.ref_image[i]), testing::frame_marker(ref));
      EXPECT_EQ(blue(b.target_image[i]), testing::frame_marker(tgt));
      EXPECT_EQ(red(b.target_image[i]), testing::clip_marker_value(static_cast<int>(info.clip)));
      EXPECT_EQ(b.face_region[i][0][32][32].item<float>(), 1.0f);
      EXPECT_EQ(b.face_region[i][0][2][2].item<float>(), 0.0f);
      EXPECT_EQ(b.face_emb[i][100].item<float>(), clip.face_emb[100]);
      EXPECT_TRUE(b.face_emb_valid[i].item<bool>());
      EXPECT_FLOAT_EQ(b.lip[1][i][0][2][3].item<float>(), clip.lip_masks[1].at<uint8_t>(2, 3) / 255.0f);
    }
  }
  EXPECT_TRUE(ref_first && ref_last);
}

TEST_F(ShardSamplers, DeterministicPerSeedAndBatchSplitting) {
  SamplerConfig cfg;
  cfg.seed = 7;
  Stage1Sampler a(reader_, cfg), b(reader_, cfg), whole(reader_, cfg);
  const auto a1 = a.next(2), a2 = a.next(2);
  const auto b1 = b.next(2), b2 = b.next(2);
  EXPECT_TRUE(a1.ref_image.equal(b1.ref_image) && a2.target_image.equal(b2.target_image));
  const auto w = whole.next(4);
  for (int i = 0; i < 4; ++i) {
    const SampleInfo& x = (i < 2 ? a1 : a2).info[static_cast<size_t>(i % 2)];
    EXPECT_EQ(x.clip, w.info[static_cast<size_t>(i)].clip);
    EXPECT_EQ(x.ref_frame, w.info[static_cast<size_t>(i)].ref_frame);
    EXPECT_EQ(x.frames, w.info[static_cast<size_t>(i)].frames);
  }
  cfg.seed = 8;
  Stage1Sampler other(reader_, cfg);
  const auto o = other.next(4);
  bool differs = false;
  for (int i = 0; i < 4; ++i)
    differs |= o.info[static_cast<size_t>(i)].ref_frame != w.info[static_cast<size_t>(i)].ref_frame;
  EXPECT_TRUE(differs);
}

TEST_F(ShardSamplers, EpochsVisitEveryClipOnceInNewOrders) {
  SamplerConfig cfg;
  cfg.min_ref_distance = 5;  // all 6 clips
  Stage1Sampler s(reader_, cfg);
  ASSERT_EQ(s.size(), 6u);
  std::set<std::vector<size_t>> orders;
  for (int e = 0; e < 4; ++e) {
    s.set_epoch(e);
    const auto b = s.next(6);
    std::vector<size_t> order;
    for (const auto& i : b.info) order.push_back(i.clip);
    std::vector<size_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<size_t>{0, 1, 2, 3, 4, 5})) << "epoch " << e;
    orders.insert(order);
  }
  EXPECT_GT(orders.size(), 1u);
  s.set_epoch(2);
  const auto again = s.next(6);  // set_epoch restarts the same order
  std::vector<size_t> order;
  for (const auto& i : again.info) order.push_back(i.clip);
  EXPECT_TRUE(orders.count(order));
}

TEST_F(ShardSamplers, RanksGetDisjointEqualShares) {
  SamplerConfig cfg;
  cfg.world_size = 3;
  std::set<size_t> seen;
  for (int r = 0; r < 3; ++r) {
    cfg.rank = r;
    Stage2Sampler s(reader_, cfg);  // 6 usable clips -> 2 each
    ASSERT_EQ(s.size(), 2u);
    for (size_t c : s.clips()) EXPECT_TRUE(seen.insert(c).second) << "clip " << c << " twice";
    for (const auto& i : s.next(4).info) EXPECT_TRUE(std::count(s.clips().begin(), s.clips().end(), i.clip));
  }
  cfg.world_size = 5;  // stage 1 has only 4 usable clips
  cfg.rank = 0;
  EXPECT_THROW(Stage1Sampler(reader_, cfg), Error);
  cfg.world_size = 2;
  cfg.rank = 2;
  EXPECT_THROW(Stage1Sampler(reader_, cfg), Error);
}

TEST_F(ShardSamplers, Stage2FramesMotionFramesAndAudioWindows) {
  Stage2Sampler s(reader_, SamplerConfig{});
  ASSERT_EQ(s.size(), 6u);
  const Stage2Batch b = s.next(6);  // one epoch: every clip once, including the 16-frame one
  ASSERT_EQ(b.frames.sizes(), (at::IntArrayRef{6, 14, 3, 64, 64}));
  ASSERT_EQ(b.motion_frames.sizes(), (at::IntArrayRef{6, 2, 3, 64, 64}));
  ASSERT_EQ(b.ref_image.sizes(), (at::IntArrayRef{6, 3, 64, 64}));
  ASSERT_EQ(b.audio.sizes(), (at::IntArrayRef{6, 14, 5, 2, 3}));
  ASSERT_EQ(b.lip[3].sizes(), (at::IntArrayRef{6, 1, 1, 1}));
  expect_range(b.frames, -1, 1, "frames");
  EXPECT_EQ(s.latent_channels(), 0);
  EXPECT_FALSE(b.latent_mean.defined() || b.latent_std.defined() || b.motion_latent_mean.defined() ||
               b.motion_latent_std.defined() || b.ref_latent_mean.defined() ||
               b.ref_latent_std.defined());
  bool saw_end_clamp = false;
  for (int64_t i = 0; i < 6; ++i) {
    const SampleInfo& info = b.info[static_cast<size_t>(i)];
    const ClipRecord& clip = clips_[info.clip];
    const int F = clip.num_frames, start = info.frames.at(0);
    ASSERT_EQ(info.frames.size(), 14u);
    ASSERT_GE(start, 2);
    ASSERT_LE(start + 14, F);
    EXPECT_EQ(info.motion_frames, (std::vector<int>{start - 2, start - 1}));
    for (int f = 0; f < 14; ++f) {
      EXPECT_EQ(info.frames[static_cast<size_t>(f)], start + f);
      EXPECT_EQ(blue(b.frames[i][f]), testing::frame_marker(start + f));
      EXPECT_EQ(red(b.frames[i][f]), testing::clip_marker_value(static_cast<int>(info.clip)));
    }
    for (int f = 0; f < 2; ++f) EXPECT_EQ(blue(b.motion_frames[i][f]), testing::frame_marker(start - 2 + f));
    EXPECT_EQ(blue(b.ref_image[i]), testing::frame_marker(info.ref_frame));
    for (int f = 0; f < 14; ++f)
      for (int k = 0; k < 5; ++k) {
        const int src = std::clamp(start + f + k - 2, 0, F - 1);
        saw_end_clamp |= start + f + k - 2 > F - 1;
        ASSERT_EQ(b.audio[i][f][k][1][0].item<float>(), static_cast<float>(src));  // frame marker
        const float want = clip.audio[(static_cast<size_t>(src) * 2 + 1) * 3 + 2];
        ASSERT_NEAR(b.audio[i][f][k][1][2].item<float>(), want, 1e-3 * std::abs(want) + 1e-6);
      }
    if (F == 16) {
      EXPECT_EQ(start, 2);  // the only fit
      EXPECT_EQ(b.audio[i][13][4][0][0].item<float>(), 15.0f);
    }
  }
  EXPECT_TRUE(saw_end_clamp);
}

TEST_F(ShardSamplers, Stage2AudioClampsAtClipStart) {
  SamplerConfig cfg;
  cfg.n_motion_frames = 0;
  cfg.n_sample_frames = 16;
  Stage2Sampler s(reader_, cfg);
  const Stage2Batch b = s.next(6);
  bool checked = false;
  for (int64_t i = 0; i < 6; ++i) {
    const SampleInfo& info = b.info[static_cast<size_t>(i)];
    if (clips_[info.clip].num_frames != 16) continue;
    ASSERT_EQ(info.frames.front(), 0);
    const std::vector<float> want = {0, 0, 0, 1, 2};
    for (int k = 0; k < 5; ++k) EXPECT_EQ(b.audio[i][0][k][0][0].item<float>(), want[static_cast<size_t>(k)]);
    checked = true;
  }
  EXPECT_TRUE(checked);
  EXPECT_EQ(b.motion_frames.size(1), 0);
}

TEST_F(ShardSamplers, ShortClipsSkippedAndResizing) {
  SamplerConfig cfg;
  cfg.n_sample_frames = 30;  // needs 32 frames: 40, 50, 64, 33
  cfg.height = cfg.width = 128;
  Stage2Sampler s(reader_, cfg);
  EXPECT_EQ(s.size(), 4u);
  const auto b = s.next(1);
  ASSERT_EQ(b.frames.sizes(), (at::IntArrayRef{1, 30, 3, 128, 128}));
  ASSERT_EQ(b.face[0].sizes(), (at::IntArrayRef{1, 1, 16, 16}));
  ASSERT_EQ(b.face[3].sizes(), (at::IntArrayRef{1, 1, 2, 2}));
  expect_range(b.frames, -1, 1, "resized frames");
  expect_range(b.pose[0], 0, 1, "resized mask");
  EXPECT_EQ(blue(b.frames[0][4]), testing::frame_marker(b.info[0].frames[4]));  // constant channel survives
  cfg.n_sample_frames = 70;
  EXPECT_THROW(Stage2Sampler(reader_, cfg), Error);  // nothing long enough
}

// Every use expects a throw: a missing error fails the test.
const auto error_of = ::hallo::test::error_message;

TEST(ShardSamplerDatasets, MixedAudioFeaturesAreRefused) {
  testing::SynthOptions a, b;
  a.num_frames = b.num_frames = 40;
  b.audio_extractor = "logmel:80";
  auto reader = std::make_shared<ShardReader>(
      write("mixed", {testing::make_clip("a", 0, a), testing::make_clip("b", 1, b)}));
  for (bool stage2 : {false, true}) {
    const std::string msg = error_of([&] {
      if (stage2) Stage2Sampler(reader, SamplerConfig{});
      else Stage1Sampler(reader, SamplerConfig{});
    });
    EXPECT_NE(msg.find("mixes audio features"), std::string::npos) << msg;
    EXPECT_NE(msg.find("logmel:80"), std::string::npos) << msg;
  }
  b.audio_extractor = a.audio_extractor;
  b.audio_dim = 4;  // same extractor name, different shape
  auto reader2 = std::make_shared<ShardReader>(
      write("mixed_shape", {testing::make_clip("a", 0, a), testing::make_clip("b", 1, b)}));
  EXPECT_NE(error_of([&] { Stage2Sampler(reader2, SamplerConfig{}); }).find("mixes audio"),
            std::string::npos);
}

TEST(ShardSamplerDatasets, Stage2NeedsAudio) {
  testing::SynthOptions o;
  o.num_frames = 40;
  o.audio_layers = o.audio_dim = 0;
  auto reader = std::make_shared<ShardReader>(write("noaudio", {testing::make_clip("a", 0, o)}));
  EXPECT_NE(error_of([&] { Stage2Sampler(reader, SamplerConfig{}); }).find("needs audio"),
            std::string::npos);
  EXPECT_NO_THROW(Stage1Sampler(reader, SamplerConfig{}).next(2));
}

// --- VAE latents ---------------------------------------------------------

// Clips with latents [F,4,8,8] (64x64 frames); `without` lists clips stored without.
std::vector<ClipRecord> latent_clips(const std::vector<int>& frames, const std::set<size_t>& without = {}) {
  std::vector<ClipRecord> clips;
  for (size_t c = 0; c < frames.size(); ++c) {
    testing::SynthOptions o = testing::with_frames(frames[c]);
    o.latents = !without.count(c);
    o.seed = static_cast<unsigned>(100 + c);
    clips.push_back(testing::make_clip("lat" + std::to_string(c), static_cast<int>(c), o));
  }
  return clips;
}

// dst [C,h,w] equals the stored (float16-rounded) latents of `frame`, and is
// close to the values written (so the frame is the right one, not just any).
void expect_latent(const at::Tensor& dst, const std::vector<float>& stored,
                   const std::vector<float>& written, int frame, const std::string& what) {
  ASSERT_EQ(dst.sizes(), (at::IntArrayRef{4, 8, 8})) << what;
  const size_t per = 4 * 8 * 8, off = static_cast<size_t>(frame) * per;
  ASSERT_LE(off + per, stored.size()) << what;
  const auto got = dst.contiguous();
  const float* p = got.data_ptr<float>();
  for (size_t k = 0; k < per; ++k) {
    ASSERT_EQ(p[k], stored[off + k]) << what << " frame " << frame << " value " << k;
    ASSERT_NEAR(p[k], written[off + k], 2e-3 * std::abs(written[off + k]) + 1e-4) << what;
  }
}

class LatentSamplers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    clips_ = latent_clips({40, 20, 50, 36});
    reader_ = std::make_shared<ShardReader>(write("latents", clips_));
    for (size_t c = 0; c < clips_.size(); ++c) stored_.push_back(reader_->read_clip(c, false));
  }
  static void TearDownTestSuite() {
    reader_.reset();
    clips_.clear();
    stored_.clear();
  }
  static std::vector<ClipRecord> clips_, stored_;
  static std::shared_ptr<ShardReader> reader_;
};
std::vector<ClipRecord> LatentSamplers::clips_, LatentSamplers::stored_;
std::shared_ptr<ShardReader> LatentSamplers::reader_;

TEST_F(LatentSamplers, Stage1CarriesLatentsOfRefAndTarget) {
  for (int size : {0, 64}) {  // as stored, or a requested size equal to it
    SamplerConfig cfg;
    cfg.height = cfg.width = size;
    cfg.min_ref_distance = 10;
    Stage1Sampler s(reader_, cfg);
    ASSERT_EQ(s.latent_channels(), 4);
    for (int round = 0; round < 3; ++round) {
      const Stage1Batch b = s.next(4);
      for (const auto* t : {&b.ref_latent_mean, &b.ref_latent_std, &b.target_latent_mean,
                            &b.target_latent_std})
        ASSERT_EQ(t->sizes(), (at::IntArrayRef{4, 4, 8, 8}));
      EXPECT_GT(b.ref_latent_std.min().item<float>(), 0.0f);  // std, not mean, went there
      for (int64_t i = 0; i < 4; ++i) {
        const SampleInfo& info = b.info[static_cast<size_t>(i)];
        const ClipRecord &st = stored_[info.clip], &wr = clips_[info.clip];
        expect_latent(b.ref_latent_mean[i], st.latent_mean, wr.latent_mean, info.ref_frame, "ref mean");
        expect_latent(b.ref_latent_std[i], st.latent_std, wr.latent_std, info.ref_frame, "ref std");
        expect_latent(b.target_latent_mean[i], st.latent_mean, wr.latent_mean, info.frames.at(0),
                      "target mean");
        expect_latent(b.target_latent_std[i], st.latent_std, wr.latent_std, info.frames.at(0),
                      "target std");
      }
    }
  }
}

TEST_F(LatentSamplers, Stage2CarriesLatentsOfFramesMotionAndRef) {
  SamplerConfig cfg;
  cfg.n_sample_frames = 8;
  cfg.n_motion_frames = 3;
  Stage2Sampler s(reader_, cfg);
  ASSERT_EQ(s.latent_channels(), 4);
  const Stage2Batch b = s.next(5);  // one epoch + one: every clip at least once
  ASSERT_EQ(b.latent_mean.sizes(), (at::IntArrayRef{5, 8, 4, 8, 8}));
  ASSERT_EQ(b.latent_std.sizes(), (at::IntArrayRef{5, 8, 4, 8, 8}));
  ASSERT_EQ(b.motion_latent_mean.sizes(), (at::IntArrayRef{5, 3, 4, 8, 8}));
  ASSERT_EQ(b.motion_latent_std.sizes(), (at::IntArrayRef{5, 3, 4, 8, 8}));
  ASSERT_EQ(b.ref_latent_mean.sizes(), (at::IntArrayRef{5, 4, 8, 8}));
  ASSERT_EQ(b.ref_latent_std.sizes(), (at::IntArrayRef{5, 4, 8, 8}));
  std::set<size_t> seen;
  for (int64_t i = 0; i < 5; ++i) {
    const SampleInfo& info = b.info[static_cast<size_t>(i)];
    seen.insert(info.clip);
    const ClipRecord &st = stored_[info.clip], &wr = clips_[info.clip];
    for (int f = 0; f < 8; ++f) {
      expect_latent(b.latent_mean[i][f], st.latent_mean, wr.latent_mean, info.frames.at(f), "mean");
      expect_latent(b.latent_std[i][f], st.latent_std, wr.latent_std, info.frames.at(f), "std");
    }
    for (int f = 0; f < 3; ++f) {
      expect_latent(b.motion_latent_mean[i][f], st.latent_mean, wr.latent_mean,
                    info.motion_frames.at(f), "motion mean");
      expect_latent(b.motion_latent_std[i][f], st.latent_std, wr.latent_std,
                    info.motion_frames.at(f), "motion std");
    }
    expect_latent(b.ref_latent_mean[i], st.latent_mean, wr.latent_mean, info.ref_frame, "ref mean");
    expect_latent(b.ref_latent_std[i], st.latent_std, wr.latent_std, info.ref_frame, "ref std");
  }
  EXPECT_EQ(seen.size(), 4u);
  // No motion frames: an empty motion axis, the rest unchanged.
  cfg.n_motion_frames = 0;
  const Stage2Batch z = Stage2Sampler(reader_, cfg).next(2);
  ASSERT_EQ(z.motion_latent_mean.sizes(), (at::IntArrayRef{2, 0, 4, 8, 8}));
  ASSERT_EQ(z.latent_mean.sizes(), (at::IntArrayRef{2, 8, 4, 8, 8}));
}

TEST_F(LatentSamplers, ResizingLeavesLatentsOut) {
  SamplerConfig cfg;
  cfg.height = cfg.width = 128;  // the latents describe 64x64 pixels
  cfg.min_ref_distance = 10;
  Stage1Sampler s1(reader_, cfg);
  EXPECT_EQ(s1.latent_channels(), 0);
  const Stage1Batch b1 = s1.next(2);
  EXPECT_EQ(b1.ref_image.size(2), 128);
  EXPECT_FALSE(b1.ref_latent_mean.defined() || b1.target_latent_std.defined());
  cfg.n_sample_frames = 8;
  Stage2Sampler s2(reader_, cfg);
  EXPECT_EQ(s2.latent_channels(), 0);
  const Stage2Batch b2 = s2.next(2);
  EXPECT_FALSE(b2.latent_mean.defined() || b2.motion_latent_std.defined() ||
               b2.ref_latent_mean.defined());
}

TEST(LatentSamplerDatasets, SomeClipsWithoutLatentsLeaveLatentsOut) {
  // Clip 1 has no latents; stage 1 with distance 30 would never sample it, yet
  // the decision is per dataset, so every rank and stage agrees.
  auto reader = std::make_shared<ShardReader>(write("latents_partial", latent_clips({40, 20, 50}, {1})));
  Stage1Sampler s1(reader, SamplerConfig{});
  EXPECT_EQ(s1.latent_channels(), 0);
  const Stage1Batch b1 = s1.next(3);
  EXPECT_FALSE(b1.ref_latent_mean.defined() || b1.ref_latent_std.defined() ||
               b1.target_latent_mean.defined() || b1.target_latent_std.defined());
  Stage2Sampler s2(reader, SamplerConfig{});
  EXPECT_EQ(s2.latent_channels(), 0);
  const Stage2Batch b2 = s2.next(3);
  EXPECT_FALSE(b2.latent_mean.defined() || b2.motion_latent_mean.defined() ||
               b2.ref_latent_std.defined());
  EXPECT_EQ(b2.frames.size(1), 14);  // the pixels are still there
}

}  // namespace
}  // namespace hallo::data
