// I3D (the FVD detector): TF SAME padding, the VideoGPT / piergiaj key layout, the
// DisCo pooling option, strict loading, and FvdDetector on the three file kinds it
// opens (torch.save state dict, safetensors, TorchScript) checked against each other.
// The weights are hash24 (eval/nets/hash24.h) of the module's own names and shapes,
// so nothing here needs the golden files; the full-size golden run is `hallo golden
// --name i3d` (tests/cli).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/grad_mode.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "eval/nets/hash24.h"
#include "eval/nets/i3d.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "tests/common/temp_dir.h"

#ifndef HALLO_TEST_PYTHON
#define HALLO_TEST_PYTHON "/usr/bin/python3"
#endif

namespace hallo::eval::nets {
namespace {

namespace fs = std::filesystem;

std::string metrics_test_dir() {
#ifdef HALLO_METRICS_TEST_DIR
  return HALLO_METRICS_TEST_DIR;
#else
  return fs::path(__FILE__).parent_path().string();
#endif
}

// Keys in torch state_dict() order: each module's own parameters then its own
// buffers, modules in pre-order of registration.
std::vector<std::pair<std::string, std::vector<int64_t>>> state_dict_entries(const torch::nn::Module& m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& sub : m.named_modules()) {
    const std::string prefix = sub.key().empty() ? "" : sub.key() + ".";
    for (const auto& p : sub.value()->named_parameters(/*recurse=*/false))
      out.emplace_back(prefix + p.key(), p.value().sizes().vec());
    for (const auto& b : sub.value()->named_buffers(/*recurse=*/false))
      out.emplace_back(prefix + b.key(), b.value().sizes().vec());
  }
  return out;
}

io::StateDict make_state_dict(const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  io::WeightSet ws;
  ws.format = "test";
  ws.source = "test";
  for (const auto& [name, t] : tensors) ws.tensors.push_back(io::from_tensor(name, t));
  ws.sort_by_name();
  return io::StateDict(std::move(ws));
}

// hash24 weights (He-uniform scale, BN stats in sane ranges) for every entry; made once.
const io::StateDict& test_weights() {
  static const io::StateDict sd = [] {
    InceptionI3d net;
    std::vector<std::pair<std::string, at::Tensor>> t;
    for (const auto& [name, shape] : state_dict_entries(*net)) t.emplace_back(name, hash24_tensor(name, at::kFloat, shape));
    return make_state_dict(t);
  }();
  return sd;
}

// The smallest clip the (2,7,7) pool accepts: T' = ceil(10/8) = 2, H' = ceil(193/32) = 7.
at::Tensor small_clip() {
  at::manual_seed(31);
  return at::rand({1, 3, 10, 193, 193}) * 2 - 1;  // [B,3,T,H,W] in [-1,1]
}

double rel_diff(const at::Tensor& got, const at::Tensor& want) {
  const auto g = got.to(at::kDouble), w = want.to(at::kDouble);
  return (g - w).abs().max().item<double>() / w.abs().max().item<double>();
}

TEST(I3D, SamePaddingFollowsThePorts) {
  using P = std::array<int64_t, 2>;
  EXPECT_EQ(tf_same_padding(224, 7, 2), (P{2, 3}));  // even size: k - s, odd half at the back
  EXPECT_EQ(tf_same_padding(16, 7, 2), (P{2, 3}));
  EXPECT_EQ(tf_same_padding(193, 7, 2), (P{3, 3}));  // odd size: k - size % s
  EXPECT_EQ(tf_same_padding(7, 2, 2), (P{0, 1}));
  EXPECT_EQ(tf_same_padding(49, 3, 2), (P{1, 1}));
  EXPECT_EQ(tf_same_padding(10, 3, 1), (P{1, 1}));
  EXPECT_EQ(tf_same_padding(4, 2, 2), (P{0, 0}));
  EXPECT_EQ(tf_same_padding(8, 1, 1), (P{0, 0}));
  EXPECT_EQ(tf_same_padding(1, 3, 2), (P{1, 1}));  // never negative, even when k > size
}

TEST(I3D, StateDictKeysMatchTheGoldenManifest) {
#ifndef HALLO_GOLDEN_DIR
  GTEST_SKIP() << "HALLO_GOLDEN_DIR not defined";
#else
  const fs::path cfg = fs::path(HALLO_GOLDEN_DIR) / "i3d.config.json";
  if (!fs::exists(cfg)) GTEST_SKIP() << cfg << " missing";
  const auto j = nlohmann::json::parse(std::ifstream(cfg));
  std::vector<std::pair<std::string, std::vector<int64_t>>> manifest;
  for (const auto& e : j.at("_harness").at("weights_manifest"))
    manifest.emplace_back(e.at("name").get<std::string>(), e.at("shape").get<std::vector<int64_t>>());
  ASSERT_EQ(manifest.size(), 287u);

  // Every variant has the same names: eps and pooling are not weights.
  for (const I3DOptions& o : {I3DOptions{}, I3DOptions{1e-3, {1, 7, 7}, 400}}) {
    InceptionI3d net(o);
    const auto got = state_dict_entries(*net);
    ASSERT_EQ(got.size(), manifest.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, manifest[i].first) << "entry " << i;  // same order as torch's state_dict()
      EXPECT_EQ(got[i].second, manifest[i].second) << got[i].first;
    }
  }
#endif
}

TEST(I3D, DiscoPoolingGivesOneLogitStepPerTPrime) {
  I3DOptions videogpt;
  I3DOptions disco;
  disco.bn_eps = videogpt.bn_eps;  // same network, only the pool differs
  disco.final_pool = {1, 7, 7};
  InceptionI3d a = load_i3d(test_weights(), "hash24", videogpt);
  InceptionI3d b = load_i3d(test_weights(), "hash24", disco);
  torch::NoGradGuard no_grad;
  const at::Tensor x = small_clip();

  std::map<std::string, at::Tensor> hooks;
  const at::Tensor la = a->logits_over_time(x, &hooks);
  const at::Tensor lb = b->logits_over_time(x);
  EXPECT_EQ(la.sizes(), (std::vector<int64_t>{1, 400, 1}));  // T' - 1 overlapping pairs
  EXPECT_EQ(lb.sizes(), (std::vector<int64_t>{1, 400, 2}));  // T' steps
  // Both pools and the 1x1x1 conv are linear: averaging the two DisCo steps gives
  // the (2,7,7) result up to rounding (the config's note for T' = 2).
  EXPECT_LT(rel_diff(lb.mean(2), la.squeeze(2)), 1e-5);
  EXPECT_LT(rel_diff(a->forward(x), la.mean(2)), 1e-6);
  EXPECT_GT(la.abs().max().item<double>(), 1e-3);  // the comparison means something

  // Hooks: every endpoint averaged over T,H,W with its channel count.
  const std::vector<int64_t> channels = {64, 64, 64, 192, 192, 256, 480, 480, 512, 512, 512, 528, 832, 832, 832, 1024};
  ASSERT_EQ(i3d_endpoints().size(), channels.size());
  for (size_t i = 0; i < channels.size(); ++i) {
    const auto it = hooks.find(i3d_endpoints()[i]);
    ASSERT_NE(it, hooks.end()) << i3d_endpoints()[i];
    EXPECT_EQ(it->second.sizes(), (std::vector<int64_t>{1, channels[i]})) << it->first;
  }
  EXPECT_EQ(hooks.at("avg_pool").sizes(), (std::vector<int64_t>{1, 1024}));
  EXPECT_TRUE(at::equal(hooks.at("logits"), la));
  EXPECT_EQ(hooks.size(), channels.size() + 2);
}

TEST(I3D, ClipsTheFinalPoolCannotTakeAreRejected) {
  InceptionI3d net;  // default weights: only shapes matter
  torch::NoGradGuard no_grad;
  try {
    net->forward(at::zeros({1, 3, 8, 64, 64}));  // T' = 1, 2x2 map
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("average pool"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("T >= 9"), std::string::npos) << e.what();
  }
  try {
    net->forward(at::zeros({1, 4, 16, 224, 224}));
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("[B,3,T,H,W]"), std::string::npos) << e.what();
  }
}

TEST(I3D, StrictLoadNamesMissingAndUnexpectedKeys) {
  std::vector<std::pair<std::string, at::Tensor>> t;
  for (const auto& name : test_weights().keys())
    if (name != "Mixed_4b.b1b.bn.running_var") t.emplace_back(name, test_weights().tensor(name));
  // A key the network does not have, and a BatchNorm counter that torch >= 0.4.1 adds when
  // re-saving (accepted: never used at inference).
  t.emplace_back("Mixed_4b.b1b.conv3d.bias", at::zeros({64}));
  t.emplace_back("Mixed_4b.b1b.bn.num_batches_tracked", at::zeros({}, at::kLong));
  try {
    load_i3d(make_state_dict(t), "my_i3d.pt");
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("my_i3d.pt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Mixed_4b.b1b.bn.running_var"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Mixed_4b.b1b.conv3d.bias"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
  }
}

TEST(I3D, DetectorOnAMissingFileNamesThePath) {
  test::TempDir dir("hallo_i3d");
  const std::string missing = (dir.path() / "i3d_pretrained_400.pt").string();
  try {
    FvdDetector::open(missing);
    ADD_FAILURE() << "no error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

// Writes the hash24 weights as safetensors, then has torch (make_i3d_torchscript.py)
// write the same weights as a torch.save state dict and as a scripted I3D with
// StyleGAN-V's forward signature. Once per process.
class I3DDetectorFiles : public ::testing::Test {
 protected:
  static int run(const std::string& cmd, const fs::path& log) {
    return std::system((cmd + " > '" + log.string() + "' 2>&1").c_str());
  }

  static void SetUpTestSuite() {
    dir_ = std::make_unique<test::TempDir>("hallo_i3d");
    const fs::path st = dir_->path() / "i3d.safetensors";
    io::write_safetensors(st, test_weights().weights().tensors);
    const std::string py = HALLO_TEST_PYTHON;
    if (run("'" + py + "' -c 'import torch, numpy'", dir_->path() / "probe.log") != 0) {
      skip_ = py + " with torch and numpy unavailable";
      return;
    }
    const std::string script = metrics_test_dir() + "/make_i3d_torchscript.py";
    const fs::path log = dir_->path() / "make.log";
    if (run("'" + py + "' '" + script + "' '" + st.string() + "' '" + dir_->path().string() + "'", log) != 0) {
      std::ifstream f(log);
      std::stringstream ss;
      ss << f.rdbuf();
      error_ = script + " failed:\n" + ss.str();
    }
  }
  static void TearDownTestSuite() { dir_.reset(); }

  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_TRUE(error_.empty()) << error_;
  }

  static fs::path file(const std::string& name) { return dir_->path() / name; }

  static std::unique_ptr<test::TempDir> dir_;
  static std::string skip_, error_;
};
std::unique_ptr<test::TempDir> I3DDetectorFiles::dir_;
std::string I3DDetectorFiles::skip_;
std::string I3DDetectorFiles::error_;

TEST_F(I3DDetectorFiles, StateDictSafetensorsAndTorchScriptGiveTheSameFeatures) {
  FvdDetector pickle = FvdDetector::open(file("i3d_state_dict.pt"));
  FvdDetector safetensors = FvdDetector::open(file("i3d.safetensors"));
  FvdDetector script = FvdDetector::open(file("i3d_torchscript.pt"));
  EXPECT_EQ(pickle.kind(), "state-dict");
  EXPECT_EQ(safetensors.kind(), "state-dict");
  EXPECT_EQ(script.kind(), "torchscript");

  const at::Tensor x = small_clip();
  const at::Tensor ref = pickle.features(x);
  ASSERT_EQ(ref.sizes(), (std::vector<int64_t>{1, 400}));
  ASSERT_EQ(ref.scalar_type(), at::kFloat);
  ASSERT_GT(ref.abs().max().item<double>(), 1e-3);
  EXPECT_FALSE(ref.requires_grad());
  EXPECT_LT(rel_diff(safetensors.features(x), ref), 1e-5);
  const at::Tensor ts = script.features(x);
  ASSERT_EQ(ts.sizes(), ref.sizes());
  EXPECT_LT(rel_diff(ts, ref), 1e-5);
}

TEST_F(I3DDetectorFiles, OptionsReachTheStateDictNetwork) {
  // DisCo pooling on T' = 2 agrees with the (2,7,7) pool up to rounding; eps 1e-3
  // changes the numbers, so the options are not ignored.
  const at::Tensor x = small_clip();
  I3DOptions disco;
  disco.final_pool = {1, 7, 7};
  I3DOptions tf_eps;
  tf_eps.bn_eps = 1e-3;
  const at::Tensor ref = FvdDetector::open(file("i3d_state_dict.pt")).features(x);
  EXPECT_LT(rel_diff(FvdDetector::open(file("i3d_state_dict.pt"), disco).features(x), ref), 1e-5);
  EXPECT_GT(rel_diff(FvdDetector::open(file("i3d_state_dict.pt"), tf_eps).features(x), ref), 1e-6);
}

}  // namespace
}  // namespace hallo::eval::nets
