// Sync-C / Sync-D: the offset arithmetic on synthetic embeddings with a known lag,
// against the documented definition; syncnet_evaluate's window count and errors; the
// module's key set; and syncnet_v2.model's storage format (a legacy torch pickle of a
// plain dict) against the safetensors path. The reference numbers are checked by
// `hallo golden --name syncnet|syncnet_eval_math --check`.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "eval/nets/hash24.h"
#include "eval/nets/syncnet.h"
#include "eval/sync_math.h"
#include "model/io/hf_config.h"
#include "model/io/safetensors.h"
#include "model/io/weights.h"
#include "tests/common/temp_dir.h"

namespace fs = std::filesystem;
using hallo::eval::nets::SyncNet;

namespace {

constexpr int kVshift = 15;

fs::path golden_config() {
#ifdef HALLO_GOLDEN_DIR
  return fs::path(HALLO_GOLDEN_DIR) / "syncnet.config.json";
#else
  return {};
#endif
}

fs::path pickle_script() {
#ifdef HALLO_METRICS_TEST_DIR
  return fs::path(HALLO_METRICS_TEST_DIR) / "make_syncnet_pickle.py";
#else
  return fs::path(__FILE__).parent_path() / "make_syncnet_pickle.py";
#endif
}

int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

// Video embeddings [N,D] around `centre` (trained towers share an embedding region, so
// the zero rows calc_pdist pads with are far from every real row), and audio rows
// a_(i+lag) = v_i + small noise; rows without a partner are fresh draws.
std::pair<at::Tensor, at::Tensor> lagged_pair(int64_t n, int64_t d, int lag, uint64_t seed, double centre = 5.0) {
  at::manual_seed(seed);
  const at::Tensor v = at::randn({n, d}) + centre;
  at::Tensor a = at::randn({n, d}) + centre;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = j - lag;
    if (i >= 0 && i < n) a[j].copy_(v[i] + 0.01 * at::randn({d}));
  }
  return {v, a};
}

// ||v_i - a_(i+j-vshift) + 1e-6|| (zero rows outside [0,N)), in double.  [N, 2*vshift+1]
std::vector<std::vector<double>> naive_dists(const at::Tensor& v, const at::Tensor& a) {
  const int64_t n = v.size(0), d = v.size(1);
  auto va = v.accessor<float, 2>();
  auto aa = a.accessor<float, 2>();
  std::vector<std::vector<double>> out(n, std::vector<double>(2 * kVshift + 1));
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j <= 2 * kVshift; ++j) {
      const int64_t r = i + j - kVshift;
      double s = 0;
      for (int64_t k = 0; k < d; ++k) {
        const double x = va[i][k] - (r >= 0 && r < n ? aa[r][k] : 0.0f) + 1e-6;
        s += x * x;
      }
      out[i][j] = std::sqrt(s);
    }
  return out;
}

// The lower middle of `x` (torch.median).
double lower_median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  return x[(x.size() - 1) / 2];
}

// Every parameter and buffer of `m` by name.
std::map<std::string, at::Tensor> named_state(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value();
  return out;
}

// hash24 weights for the module's own keys (the golden's rule, no golden needed).
hallo::io::StateDict hash24_weights(torch::nn::Module& m) { return hallo::eval::hash24_state_dict(m); }

}  // namespace

TEST(SyncNetOffsets, RecoversTheLagOfLaggedAudio) {
  for (int lag : {-3, 0, 4}) {
    const auto [v, a] = lagged_pair(40, 64, lag, 100 + lag);
    const auto r = hallo::eval::sync_offsets(v, a, kVshift);
    EXPECT_EQ(r.offset, -lag) << lag;  // audio lagging video by k frames -> offset -k
    EXPECT_EQ(r.min_idx, kVshift + lag) << lag;
    EXPECT_GT(r.conf, 0.f) << lag;
    EXPECT_EQ(r.dists_per_frame.sizes(), (std::vector<int64_t>{40, 2 * kVshift + 1}));
    EXPECT_EQ(r.dists.sizes(), (std::vector<int64_t>{2 * kVshift + 1}));
    for (const auto& t : {r.fdist, r.fconf, r.fconfm}) EXPECT_EQ(t.sizes(), (std::vector<int64_t>{40}));
  }
}

// Without a matching audio row every shift is about equally far; what remains is the
// zero padding's pull, which fades with the clip length (so a long clip, centred rows).
TEST(SyncNetOffsets, ShuffledAudioGivesLittleConfidence) {
  const auto [v, a] = lagged_pair(200, 64, 0, 7, /*centre=*/0.0);
  const float aligned = hallo::eval::sync_offsets(v, a, kVshift).conf;
  at::manual_seed(8);
  const at::Tensor shuffled = a.index_select(0, at::randperm(200));
  const float conf = hallo::eval::sync_offsets(v, shuffled, kVshift).conf;
  EXPECT_LT(conf, 0.1f * aligned) << "aligned " << aligned << ", shuffled " << conf;
}

// Every output against the definition: distances with zero-padded audio and +1e-6 inside
// the norm, mean over frames, min, lower median, per-frame values at the minimum and
// their 9-tap median filter with zeros beyond the ends.
TEST(SyncNetOffsets, MatchesTheDefinition) {
  const auto [v, a] = lagged_pair(12, 16, 2, 21);
  const auto r = hallo::eval::sync_offsets(v, a, kVshift);
  const auto d = naive_dists(v, a);
  const int64_t n = 12, w = 2 * kVshift + 1;
  std::vector<double> mean(w, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < w; ++j) {
      EXPECT_NEAR(r.dists_per_frame[i][j].item<float>(), d[i][j], 1e-4 * d[i][j]) << i << "," << j;
      mean[j] += d[i][j] / n;
    }
  for (int64_t j = 0; j < w; ++j) EXPECT_NEAR(r.dists[j].item<float>(), mean[j], 1e-4 * mean[j]) << j;
  const int64_t argmin = std::min_element(mean.begin(), mean.end()) - mean.begin();
  EXPECT_EQ(r.min_idx, argmin);
  EXPECT_EQ(r.offset, kVshift - argmin);
  EXPECT_NEAR(r.min_dist, mean[argmin], 1e-4 * mean[argmin]);
  const double med = lower_median(mean);
  EXPECT_NEAR(r.conf, med - mean[argmin], 1e-3);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(r.fdist[i].item<float>(), d[i][argmin], 1e-4 * d[i][argmin]) << i;
    EXPECT_NEAR(r.fconf[i].item<float>(), med - d[i][argmin], 1e-3) << i;
    std::vector<double> win;
    for (int64_t k = i - 4; k <= i + 4; ++k) win.push_back(k >= 0 && k < n ? r.fconf[k].item<float>() : 0.0);
    std::sort(win.begin(), win.end());
    EXPECT_FLOAT_EQ(r.fconfm[i].item<float>(), static_cast<float>(win[4])) << i;
  }
}

TEST(SyncNetOffsets, RejectsMismatchedEmbeddings) {
  EXPECT_THROW(hallo::eval::sync_offsets(at::zeros({5, 8}), at::zeros({4, 8})), hallo::Error);
  EXPECT_THROW(hallo::eval::sync_offsets(at::zeros({0, 8}), at::zeros({0, 8})), hallo::Error);
}

// The key set strict loading of syncnet_v2.model relies on: the golden's manifest
// (88 tensors, no num_batches_tracked).
TEST(SyncNetKeys, ModuleStateMatchesGoldenManifest) {
  if (!fs::exists(golden_config())) GTEST_SKIP() << golden_config() << " not found";
  const auto cfg = hallo::io::load_json_file(golden_config());
  std::map<std::string, std::vector<int64_t>> want;
  for (const auto& e : cfg.at("_harness").at("weights_manifest"))
    want[e.at("name").get<std::string>()] = e.at("shape").get<std::vector<int64_t>>();
  ASSERT_EQ(want.size(), 88u);
  SyncNet net;
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& [name, t] : named_state(*net)) got[name] = t.sizes().vec();
  EXPECT_EQ(got, want);
}

TEST(SyncNetKeys, StrictLoadNamesTheMissingKey) {
  SyncNet tmp;
  auto ws = hash24_weights(*tmp).weights();
  ws.tensors.erase(std::remove_if(ws.tensors.begin(), ws.tensors.end(),
                                  [](const auto& r) { return r.name == "netfcaud.3.bias"; }),
                   ws.tensors.end());
  try {
    hallo::eval::nets::load_syncnet(hallo::io::StateDict(ws), "edited.model");
    FAIL() << "strict load accepted a state dict without netfcaud.3.bias";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("netfcaud.3.bias"), std::string::npos) << e.what();
  }
}

// lastframe = min(T, floor(S/640)) - 5 windows, one per frame start, in batches.
TEST(SyncNetEvaluate, WindowCountFollowsTheShorterStream) {
  SyncNet tmp;
  auto net = hallo::eval::nets::load_syncnet(hash24_weights(*tmp), "hash24");
  at::manual_seed(5);
  const at::Tensor frames = at::randint(0, 256, {9, 224, 224, 3}, at::kByte);
  const at::Tensor audio = at::randint(-3000, 3000, {640 * 12}, at::kShort);
  // Video shorter: min(9, 12) - 5 = 4 windows, in batches of 3 (a ragged last batch).
  const auto e = hallo::eval::syncnet_evaluate(*net, frames, audio, "clip.mp4", 3);
  EXPECT_EQ(e.video_emb.sizes(), (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(e.audio_emb.sizes(), (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(e.offsets.dists_per_frame.size(0), 4);
  // The batch size does not change the windows.
  const auto e20 = hallo::eval::syncnet_evaluate(*net, frames, audio, "clip.mp4");
  EXPECT_TRUE(at::allclose(e20.video_emb, e.video_emb, 1e-4, 1e-2));
  // Audio shorter: floor((640*7 + 639) / 640) = 7 -> 2 windows.
  const auto e2 = hallo::eval::syncnet_evaluate(*net, frames, audio.slice(0, 0, 640 * 7 + 639), "clip.mp4");
  EXPECT_EQ(e2.video_emb.size(0), 2);
  EXPECT_TRUE(at::allclose(e2.audio_emb, e.audio_emb.slice(0, 0, 2), 1e-4, 1e-2));
}

TEST(SyncNetEvaluate, TooShortInputsThrowNamingTheVideo) {
  SyncNet net;
  const at::Tensor frames = at::zeros({5, 224, 224, 3}, at::kByte);
  for (const auto& [f, s] : {std::pair<at::Tensor, int64_t>{frames, 640 * 30},
                             std::pair<at::Tensor, int64_t>{at::zeros({30, 224, 224, 3}, at::kByte), 640 * 5 + 639}}) {
    try {
      hallo::eval::syncnet_evaluate(*net, f, at::zeros({s}, at::kShort), "short_clip.mp4");
      FAIL() << "accepted " << f.size(0) << " frames and " << s << " samples";
    } catch (const hallo::Error& e) {
      EXPECT_NE(std::string(e.what()).find("short_clip.mp4"), std::string::npos) << e.what();
    }
  }
}

// syncnet_v2.model is a legacy-format torch pickle of a plain dict: the same tensors
// through that format and through the hash24 state dict give identical embeddings.
TEST(SyncNetWeights, LegacyPickleAndHash24GiveIdenticalEmbeddings) {
#ifndef HALLO_TEST_PYTHON
  GTEST_SKIP() << "HALLO_TEST_PYTHON not defined";
#else
  if (!fs::exists(golden_config())) GTEST_SKIP() << golden_config() << " not found";
  const auto cfg = hallo::io::load_json_file(golden_config());
  const auto sd = hallo::eval::hash24_state_dict(cfg.at("_harness"), golden_config().string());
  hallo::test::TempDir dir("syncnet_weights");
  const fs::path st = dir / "syncnet.safetensors", pickle = dir / "syncnet_v2.model";
  hallo::io::write_safetensors(st, sd.weights().tensors);
  if (run(std::string(HALLO_TEST_PYTHON) + " " + pickle_script().string() + " " + st.string() + " " +
          pickle.string()) != 0)
    GTEST_SKIP() << HALLO_TEST_PYTHON << " with torch and numpy unavailable";
  EXPECT_EQ(hallo::io::detect_file_format(pickle), "torch-legacy");

  auto ref = hallo::eval::nets::load_syncnet(sd, golden_config().string());
  auto loaded = hallo::eval::nets::load_syncnet(pickle);
  EXPECT_FALSE(loaded->is_training());
  at::manual_seed(9);
  const at::Tensor lips = at::randint(0, 256, {1, 3, 5, 224, 224}).to(at::kFloat);
  const at::Tensor mfcc = at::randn({2, 1, 13, 20}) * 10;
  torch::NoGradGuard ng;
  EXPECT_TRUE(at::equal(loaded->forward_lip(lips), ref->forward_lip(lips)));
  EXPECT_TRUE(at::equal(loaded->forward_aud(mfcc), ref->forward_aud(mfcc)));
  EXPECT_TRUE(at::equal(hallo::eval::nets::load_syncnet(st)->forward_aud(mfcc), ref->forward_aud(mfcc)));
#endif
}
