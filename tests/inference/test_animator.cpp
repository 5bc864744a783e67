// The one inference path on tiny random nets: clip chaining over long audio,
// determinism, and separate audio / image guidance.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "inference/animator.h"
#include "tests/inference/tiny_model.h"

namespace hallo::inference {
namespace {

AnimateInputs inputs(int64_t n_audio, int64_t frames) {
  at::manual_seed(3);
  AnimateInputs in;
  in.reference = at::rand({3, 64, 64}) * 2 - 1;
  in.face_emb = at::randn({1, 512});
  in.face_region = at::zeros({1, 3, 64, 64});
  in.face_region.narrow(2, 16, 32).narrow(3, 16, 32).fill_(1);
  for (int l = 0; l < 4; ++l) {
    const int64_t s = 8 >> l;
    in.masks.full.push_back(at::rand({1, s * s}));
    in.masks.face.push_back(at::rand({1, s * s}));
    in.masks.lip.push_back(at::rand({1, s * s}));
  }
  in.audio_windows = at::randn({n_audio, 5, 1, 16});
  in.frames = frames;
  return in;
}

AnimateSettings settings() {
  AnimateSettings s;
  s.frames_per_clip = 4;
  s.motion_frames = 2;
  s.clip.num_inference_steps = 2;
  s.clip.guidance_scale = 3.5;
  s.seed = 7;
  return s;
}

struct AnimatorTest : ::testing::Test {
  trainer::ModelBundle m = testing::tiny_models();
  Animator make(const AnimateSettings& s) { return Animator(m.net, m.vae, sched::SchedulerConfig::hallo_inference(), s); }
};

TEST_F(AnimatorTest, LongAudioChainsClipsThroughTheLastFrames) {
  // 10 frames of audio in clips of 4: 3 clips, the last one padded, the video trimmed to 10.
  Animator a = make(settings());
  model::ClipRecord rec;
  int calls = 0;
  const at::Tensor v = a.render(inputs(10, 10), [&](const ClipProgress& p) { EXPECT_EQ(p.clip, calls++); EXPECT_EQ(p.clips, 3); }, &rec);
  EXPECT_EQ(calls, 3);
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{10, 3, 64, 64}));
  EXPECT_GE(v.min().item<double>(), 0.0);
  EXPECT_LE(v.max().item<double>(), 1.0);
  // Clip 1 reads the reference as its motion frames; clips 2 and 3 the previous clip's last two.
  const at::Tensor in0 = rec.at("clip0.vae_encode_input");  // [3, 3, H, W] in [-1, 1]
  const at::Tensor ref = inputs(10, 10).reference;
  EXPECT_TRUE(at::equal(in0[0], ref));
  EXPECT_TRUE(at::equal(in0[1], ref));
  EXPECT_TRUE(at::equal(in0[2], ref));
  const at::Tensor in1 = rec.at("clip1.vae_encode_input");
  EXPECT_TRUE(at::equal(in1[0], ref));
  EXPECT_TRUE(at::allclose(in1.narrow(0, 1, 2), v.narrow(0, 2, 2) * 2 - 1, 0, 1e-6));
  const at::Tensor in2 = rec.at("clip2.vae_encode_input");
  EXPECT_TRUE(at::allclose(in2.narrow(0, 1, 2), v.narrow(0, 6, 2) * 2 - 1, 0, 1e-6));
  EXPECT_FALSE(at::allclose(in1.narrow(0, 1, 2), in2.narrow(0, 1, 2)));
  EXPECT_EQ(rec.count("clip3.vae_encode_input"), 0u);
}

TEST_F(AnimatorTest, SameSeedSameBitsOtherSeedOtherVideo) {
  AnimateSettings s = settings();
  const at::Tensor a = make(s).render(inputs(6, 6));
  const at::Tensor b = make(s).render(inputs(6, 6));
  EXPECT_TRUE(at::equal(a, b));
  s.seed = 8;
  const at::Tensor c = make(s).render(inputs(6, 6));
  EXPECT_GT((a - c).abs().max().item<double>(), 1e-3);
}

TEST_F(AnimatorTest, AudioDrivesTheVideo) {
  // Same noise, other audio: the frames change (the audio path is live end to end).
  const at::Tensor a = make(settings()).render(inputs(4, 4));
  AnimateInputs other = inputs(4, 4);
  other.audio_windows = at::randn({4, 5, 1, 16}) * 3;
  const at::Tensor b = make(settings()).render(other);
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-4);
}

TEST_F(AnimatorTest, SeparateGuidanceWithEqualScalesIsSingleCfg) {
  AnimateSettings single = settings();
  model::ClipRecord r1, r2, r3;
  const at::Tensor a = make(single).render(inputs(4, 4), {}, &r1);
  AnimateSettings sep = settings();
  sep.clip.audio_guidance_scale = sep.clip.image_guidance_scale = 3.5;
  const at::Tensor b = make(sep).render(inputs(4, 4), {}, &r2);
  // The [uncond, image, full] batch guided with equal scales is the [uncond, cond] one.
  const at::Tensor g1 = r1.at("clip0.step0.guided_model_output"), g2 = r2.at("clip0.step0.guided_model_output");
  EXPECT_EQ(r2.at("clip0.step0.noise_pred_cfg_batch").size(0), 3);
  EXPECT_LE((g1 - g2).abs().max().item<double>(), 1e-4 * g1.abs().max().item<double>());
  EXPECT_LE((a - b).abs().max().item<double>(), 1e-4);
  // Unequal scales: the audio scale moves the result.
  sep.clip.audio_guidance_scale = 6.0;
  const at::Tensor c = make(sep).render(inputs(4, 4), {}, &r3);
  EXPECT_GT((r3.at("clip0.step0.guided_model_output") - g2).abs().max().item<double>(), 1e-5);
}

TEST_F(AnimatorTest, MotionNoiseIsASwitch) {
  AnimateSettings s = settings();
  const at::Tensor a = make(s).render(inputs(4, 4));
  s.clip.motion_noise_timestep = 25;
  const at::Tensor b = make(s).render(inputs(4, 4));
  EXPECT_GT((a - b).abs().max().item<double>(), 1e-5);
}

TEST_F(AnimatorTest, RejectsMoreFramesThanAudio) {
  Animator a = make(settings());
  try {
    a.render(inputs(4, 9));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("audio features cover 4"), std::string::npos) << e.what();
  }
}

TEST(ShuffleAudioBlocks, PermutesWholeBlocksOfTheSpokenFramesOnly) {
  // Row r holds the value r, so the output says which input row went where.
  const at::Tensor w = at::arange(30, at::kFloat).reshape({30, 1, 1, 1}).expand({30, 5, 1, 2}).contiguous();
  const at::Tensor s = shuffle_audio_blocks(w, 23, 5, 7);
  ASSERT_EQ(s.sizes(), w.sizes());
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < 30; ++r) rows.push_back(static_cast<int64_t>(s[r][0][0][0].item<float>()));
  EXPECT_TRUE(at::equal(s[4], w[rows[4]]));
  for (int64_t r = 23; r < 30; ++r) EXPECT_EQ(rows[r], r);  // padding past the audio stays
  std::vector<int64_t> sorted(rows.begin(), rows.begin() + 23);
  std::sort(sorted.begin(), sorted.end());
  for (int64_t r = 0; r < 23; ++r) EXPECT_EQ(sorted[r], r);  // a permutation of the spoken rows
  // Blocks stay contiguous: each run starts at a multiple of 5 and counts up.
  int moved = 0;
  for (int64_t r = 0; r < 23; ++r) {
    if (r > 0 && rows[r] != rows[r - 1] + 1) {
      EXPECT_EQ(rows[r] % 5, 0) << r;
    }
    moved += rows[r] != r;
  }
  EXPECT_GT(moved, 0);
  EXPECT_TRUE(at::equal(shuffle_audio_blocks(w, 23, 5, 7), s));    // seeded
  EXPECT_FALSE(at::equal(shuffle_audio_blocks(w, 23, 5, 8), s));
}

}  // namespace
}  // namespace hallo::inference
