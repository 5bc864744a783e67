// pytorch-fid's InceptionV3: the module's key set against the golden's manifest, the
// same features from every weight format it ships in (safetensors, torch pickle legacy
// and zip), and fid_features (uint8 frames, batched) against features(). The numbers
// themselves are checked by `hallo golden --name fid_inception --check`.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "eval/nets/hash24.h"
#include "eval/nets/inception_fid.h"
#include "model/io/hf_config.h"
#include "model/io/safetensors.h"
#include "model/io/weights.h"
#include "model/nn/loader.h"
#include "tests/common/temp_dir.h"

namespace fs = std::filesystem;
using hallo::eval::nets::FidInceptionV3;

namespace {

fs::path golden_dir() {
#ifdef HALLO_GOLDEN_DIR
  return HALLO_GOLDEN_DIR;
#else
  return {};
#endif
}

fs::path golden_config() { return golden_dir() / "fid_inception.config.json"; }

// Every parameter and buffer of `m` by name.
std::map<std::string, at::Tensor> named_state(torch::nn::Module& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) out[b.key()] = b.value();
  return out;
}

// hash24 weights for the module's own keys (the golden's rule, no golden needed).
hallo::io::StateDict hash24_weights(torch::nn::Module& m) { return hallo::eval::hash24_state_dict(m); }

// One hash24-weighted network shared by the tests (building and filling it is the slow part).
FidInceptionV3& shared_net() {
  static FidInceptionV3 net = [] {
    FidInceptionV3 tmp;
    return hallo::eval::nets::load_fid_inception(hash24_weights(*tmp), "hash24");
  }();
  return net;
}

double rel_diff(const at::Tensor& got, const at::Tensor& want) {
  const double ref = want.abs().max().item<double>();
  const double d = (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>();
  return ref > 0 ? d / ref : d;
}

int run(const std::string& cmd) { return std::system((cmd + " > /dev/null 2>&1").c_str()); }

fs::path pickle_script() {
#ifdef HALLO_METRICS_TEST_DIR
  return fs::path(HALLO_METRICS_TEST_DIR) / "make_pickle_weights.py";
#else
  return fs::path(__FILE__).parent_path() / "make_pickle_weights.py";
#endif
}

}  // namespace

// Strict loading of the real pt_inception file depends on the module holding exactly
// its keys: the manifest lists them (566, fc and num_batches_tracked included).
TEST(FidInceptionKeys, ModuleStateMatchesGoldenManifest) {
  if (!fs::exists(golden_config())) GTEST_SKIP() << golden_config() << " not found";
  const auto cfg = hallo::io::load_json_file(golden_config());
  std::map<std::string, std::tuple<std::string, std::vector<int64_t>>> want;
  for (const auto& e : cfg.at("_harness").at("weights_manifest"))
    want[e.at("name").get<std::string>()] = {e.at("dtype").get<std::string>(), e.at("shape").get<std::vector<int64_t>>()};
  ASSERT_EQ(want.size(), 566u);

  FidInceptionV3 net;
  std::map<std::string, std::tuple<std::string, std::vector<int64_t>>> got;
  for (const auto& [name, t] : named_state(*net))
    got[name] = {t.scalar_type() == at::kLong ? "I64" : "F32", t.sizes().vec()};

  std::set<std::string> missing, unexpected;
  for (const auto& [k, v] : want)
    if (!got.count(k)) missing.insert(k);
  for (const auto& [k, v] : got)
    if (!want.count(k)) unexpected.insert(k);
  EXPECT_TRUE(missing.empty()) << "first missing: " << *missing.begin();
  EXPECT_TRUE(unexpected.empty()) << "first unexpected: " << *unexpected.begin();
  for (const auto& [k, v] : want) {
    auto it = got.find(k);
    if (it == got.end()) continue;
    EXPECT_EQ(std::get<0>(it->second), std::get<0>(v)) << k;
    EXPECT_EQ(std::get<1>(it->second), std::get<1>(v)) << k;
  }
}

TEST(FidInceptionKeys, StrictLoadNamesMissingAndUnexpectedKeys) {
  FidInceptionV3 tmp;
  auto ws = hash24_weights(*tmp).weights();
  // Drop one BN variance and rename the head: both must be named in the error. A missing
  // num_batches_tracked counter is not an error (older torch files lack them; never used).
  std::vector<hallo::io::TensorRecord> kept;
  for (auto& r : ws.tensors) {
    if (r.name == "Mixed_7c.branch_pool.bn.num_batches_tracked") continue;
    if (r.name == "Mixed_7c.branch_pool.bn.running_var") continue;
    if (r.name == "fc.bias") r.name = "logits.bias";
    kept.push_back(r);
  }
  ws.tensors = kept;
  ws.sort_by_name();
  try {
    hallo::eval::nets::load_fid_inception(hallo::io::StateDict(ws), "edited.pth");
    FAIL() << "strict load accepted an edited state dict";
  } catch (const hallo::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("Mixed_7c.branch_pool.bn.running_var"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
    EXPECT_NE(msg.find("logits.bias"), std::string::npos) << msg;
  }
}

TEST(FidInceptionFeatures, RejectsBadInputsAndDims) {
  auto& net = shared_net();
  torch::NoGradGuard ng;
  EXPECT_THROW(net->features(at::zeros({1, 1, 32, 32}), {2048}), hallo::Error);  // not RGB
  EXPECT_THROW(net->features(at::zeros({3, 32, 32}), {2048}), hallo::Error);     // no batch dim
  EXPECT_THROW(net->features(at::zeros({1, 3, 32, 32}), {100}), hallo::Error);   // no such block
  EXPECT_THROW(hallo::eval::nets::fid_features(*net, at::zeros({1, 32, 32, 3}), 4), hallo::Error);  // float frames
  EXPECT_THROW(hallo::eval::nets::fid_features(*net, at::zeros({1, 32, 32, 3}, at::kByte), 0), hallo::Error);
}

// Each dim is its block's output pooled, so asking for several at once must not change
// any of them, and every shape is [N, dim].
TEST(FidInceptionFeatures, DimsAreIndependentOfEachOther) {
  auto& net = shared_net();
  torch::NoGradGuard ng;
  at::manual_seed(7);
  const at::Tensor x = at::rand({2, 3, 75, 75});
  const auto all = net->features(x, {64, 192, 768, 2048});
  for (int d : {64, 192, 768}) {
    const auto one = net->features(x, {d});
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one.at(d).sizes(), (std::vector<int64_t>{2, d}));
    EXPECT_TRUE(at::equal(one.at(d), all.at(d))) << d;
  }
  EXPECT_TRUE(at::equal(net->forward(x), all.at(2048)));
  EXPECT_EQ(all.at(2048).sizes(), (std::vector<int64_t>{2, 2048}));
  // After the final ReLU block and an average pool every feature is non-negative.
  EXPECT_GE(all.at(2048).min().item<float>(), 0.f);
}

// fid_features is ToTensor (u8/255, HWC -> CHW) + forward, in batches: the same
// numbers as calling forward on the converted frames, whatever the batch size.
TEST(FidInceptionFeatures, FidFeaturesMatchesForwardAndIsBatchInvariant) {
  auto& net = shared_net();
  at::manual_seed(11);
  const at::Tensor frames = at::randint(0, 256, {3, 75, 75, 3}, at::kByte);  // [N,H,W,3]
  at::Tensor ref;
  {
    torch::NoGradGuard ng;
    ref = net->forward(frames.permute({0, 3, 1, 2}).to(at::kFloat).div(255));  // [3,2048]
  }
  const at::Tensor b1 = hallo::eval::nets::fid_features(*net, frames, 1);
  const at::Tensor b3 = hallo::eval::nets::fid_features(*net, frames, 3);
  const at::Tensor b2 = hallo::eval::nets::fid_features(*net, frames, 2);  // a ragged last batch
  ASSERT_EQ(b3.sizes(), (std::vector<int64_t>{3, 2048}));
  EXPECT_EQ(b3.scalar_type(), at::kFloat);
  EXPECT_FALSE(b3.requires_grad());
  EXPECT_LE(rel_diff(b3, ref), 1e-5);
  EXPECT_LE(rel_diff(b1, b3), 1e-5);
  EXPECT_LE(rel_diff(b2, b3), 1e-5);
  EXPECT_EQ(hallo::eval::nets::fid_features(*net, frames.slice(0, 0, 0), 4).sizes(), (std::vector<int64_t>{0, 2048}));
}

// The golden's uint8 frames through fid_features give the reference tool's features
// (the golden runner feeds in.images; this covers the uint8 path with the same bound).
TEST(FidInceptionFeatures, FidFeaturesOfGoldenFramesMatchPytorchFid) {
  const fs::path io_path = golden_dir() / "fid_inception.io.safetensors";
  if (!fs::exists(golden_config()) || !fs::exists(io_path)) GTEST_SKIP() << golden_dir() << " lacks fid_inception";
  const auto cfg = hallo::io::load_json_file(golden_config());
  auto net = hallo::eval::nets::load_fid_inception(
      hallo::eval::hash24_state_dict(cfg.at("_harness"), golden_config().string()), golden_config().string());
  const auto io = hallo::io::StateDict::open(io_path);
  const at::Tensor got = hallo::eval::nets::fid_features(*net, io.tensor("in.images_u8"), 2);
  EXPECT_LE(rel_diff(got, io.tensor("out.features")), 2e-4);
}

// pytorch-fid ships its weights as a legacy (pre-1.6) torch pickle; the same tensors
// as safetensors and as a zip checkpoint must give bit-identical features.
TEST(FidInceptionWeights, PickleAndSafetensorsGiveIdenticalFeatures) {
#ifndef HALLO_TEST_PYTHON
  GTEST_SKIP() << "HALLO_TEST_PYTHON not defined";
#else
  auto& net = shared_net();
  hallo::test::TempDir dir("fid_inception");
  const fs::path st = dir / "fid.safetensors";
  {
    std::vector<hallo::io::TensorRecord> recs;
    for (const auto& [name, t] : named_state(*net)) recs.push_back(hallo::io::from_tensor(name, t));
    hallo::io::write_safetensors(st, recs);
  }
  const fs::path legacy = dir / "pt_inception.pth", zip = dir / "pt_inception_zip.pth";
  const std::string py = std::string(HALLO_TEST_PYTHON) + " " + pickle_script().string() + " " + st.string() + " ";
  if (run(py + legacy.string() + " legacy") != 0 || run(py + zip.string() + " zip") != 0)
    GTEST_SKIP() << HALLO_TEST_PYTHON << " with torch and numpy unavailable";
  EXPECT_EQ(hallo::io::detect_file_format(legacy), "torch-legacy");
  EXPECT_EQ(hallo::io::detect_file_format(zip), "torch-zip");

  at::manual_seed(3);
  const at::Tensor x = at::rand({2, 3, 75, 75});
  torch::NoGradGuard ng;
  const at::Tensor ref = net->forward(x);
  for (const fs::path& p : {st, legacy, zip}) {
    auto loaded = hallo::eval::nets::load_fid_inception(p);
    EXPECT_FALSE(loaded->is_training()) << p;
    EXPECT_TRUE(at::equal(loaded->forward(x), ref)) << p;
  }
#endif
}
