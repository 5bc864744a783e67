// Gradient checkpointing of the UNet3D's units: recomputing in backward gives the
// same gradients as keeping activations, and the reentrant rule (upstream's) drops
// the down path's gradients exactly when no unit input needs one.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

#include "model/hallo/unet_3d.h"
#include "model/nn/autocast.h"
#include "model/nn/grad_checkpoint.h"
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

namespace hallo::model {
namespace {

struct Fixture {
  UNet3DConditionModel net{UNet3DConfig::tiny()};
  at::Tensor sample, timestep, context, audio;
  AudioMasks masks;

  Fixture() {
    at::manual_seed(11);
    net = UNet3DConditionModel(UNet3DConfig::tiny());
    // Stage 2's trainable set: audio and motion modules only.
    for (const auto& p : net->named_parameters()) {
      const bool t = p.key().find("audio_modules") != std::string::npos || p.key().find("motion_modules") != std::string::npos;
      p.value().set_requires_grad(t);
    }
    const int64_t f = 3, h = 16;
    sample = at::randn({1, 4, f, h, h});
    timestep = at::tensor({500}, at::kLong);
    context = at::randn({1, 4, 40});
    audio = at::randn({1, f, 8, 48});
    for (int l = 0; l < 4; ++l) {
      const int64_t s = h >> l;
      masks.full.push_back(at::rand({f, s * s}));
      masks.face.push_back(at::rand({f, s * s}));
      masks.lip.push_back(at::rand({f, s * s}));
    }
  }

  // Gradients of a fixed loss under `policy`; `audio_grad`: whether the audio tokens carry
  // gradient (they come from the trainable audio projection unless the audio is dropped).
  std::map<std::string, at::Tensor> grads(nn::CheckpointPolicy policy, bool audio_grad) {
    net->zero_grad();
    for (auto& p : net->parameters()) p.mutable_grad() = at::Tensor();
    net->train();
    net->set_checkpointing(policy);
    at::Tensor a = audio.clone().set_requires_grad(audio_grad);
    const at::Tensor out = net->forward(sample, timestep, context, at::Tensor(), masks, a, at::Tensor(), nullptr, nullptr, false);
    out.pow(2).mean().backward();
    std::map<std::string, at::Tensor> g;
    for (const auto& p : net->named_parameters())
      if (p.value().grad().defined()) g[p.key()] = p.value().grad().clone();
    return g;
  }
};

TEST(GradCheckpoint, RecomputeGivesTheSameGradients) {
  Fixture f;
  const auto plain = f.grads({}, true);
  const auto ckpt = f.grads({true, false}, true);
  ASSERT_FALSE(plain.empty());
  ASSERT_EQ(plain.size(), ckpt.size());
  for (const auto& [k, g] : plain) {
    ASSERT_TRUE(ckpt.count(k)) << k;
    EXPECT_TRUE(at::allclose(g, ckpt.at(k), 1e-5, 1e-7)) << k << " max diff "
                                                          << (g - ckpt.at(k)).abs().max().item<double>();
  }
}

// solver.checkpoint_keep_blocks: the named blocks keep activations, the others still
// recompute, and the gradients are the same either way.
TEST(GradCheckpoint, KeptBlocksGiveTheSameGradients) {
  nn::CheckpointPolicy keep{true, false, {"up_blocks.1", "down_blocks.0"}};
  EXPECT_FALSE(keep.for_block("up_blocks.1").recompute);
  EXPECT_FALSE(keep.for_block("down_blocks.0").recompute);
  EXPECT_TRUE(keep.for_block("up_blocks.2").recompute);
  EXPECT_TRUE(keep.for_block("up_blocks.10").recompute);  // names match whole, not by prefix
  nn::CheckpointPolicy reentrant_keep{true, true, {"up_blocks.1"}};
  EXPECT_TRUE(reentrant_keep.for_block("up_blocks.1").active());  // upstream's gradient rule still applies
  Fixture f;
  const auto plain = f.grads({}, true);
  const auto kept = f.grads(keep, true);
  ASSERT_EQ(plain.size(), kept.size());
  for (const auto& [k, g] : plain) {
    ASSERT_TRUE(kept.count(k)) << k;
    EXPECT_TRUE(at::allclose(g, kept.at(k), 1e-5, 1e-7)) << k;
  }
}

TEST(GradCheckpoint, ReentrantRuleDropsTheDownPathWithoutAudioGradient) {
  Fixture f;
  auto count = [](const std::map<std::string, at::Tensor>& g, const std::string& prefix) {
    int n = 0;
    for (const auto& [k, v] : g) n += k.rfind(prefix, 0) == 0;
    return n;
  };
  // Audio dropped (no gradient): upstream's reentrant checkpointing leaves the down
  // blocks' audio and motion modules without gradient; mid and up blocks still train.
  for (const nn::CheckpointPolicy& p : {nn::CheckpointPolicy{true, true}, nn::CheckpointPolicy{false, true}}) {
    const auto g = f.grads(p, false);
    EXPECT_EQ(count(g, "down_blocks."), 0) << "recompute " << p.recompute;
    EXPECT_GT(count(g, "mid_block."), 0);
    EXPECT_GT(count(g, "up_blocks.1."), 0);
  }
  // The fixed semantics (parameters are inputs of the unit): the down path trains.
  const auto full = f.grads({true, false}, false);
  EXPECT_GT(count(full, "down_blocks.0.audio_modules."), 0);
  EXPECT_GT(count(full, "down_blocks.0.motion_modules."), 0);
  // With audio gradient the reentrant rule changes nothing: same set as without checkpointing.
  const auto with_audio = f.grads({true, true}, true);
  const auto plain = f.grads({}, true);
  EXPECT_EQ(with_audio.size(), plain.size());
  // Plain blocks' motion modules never run (skip_motion_in_plain_blocks): no gradient anywhere.
  EXPECT_EQ(count(plain, "down_blocks.3.motion_modules."), 0);
  EXPECT_EQ(count(plain, "up_blocks.0.motion_modules."), 0);
}

// Under mixed precision the recompute must run in the forward's autocast state (autograd
// runs backward with autocast off): the checkpointed unit's gradients then equal the
// plain unit's bit for bit, in the same dtypes. Linear layers are autocast ops on the
// CPU in every libtorch, so this runs here.
TEST(GradCheckpoint, RecomputeUnderAutocastGivesThePlainGradients) {
  at::manual_seed(12);
  torch::nn::Sequential unit(torch::nn::Linear(16, 32), torch::nn::GELU(), torch::nn::Linear(32, 16));
  const at::Tensor x0 = at::randn({4, 16}), go = at::randn({4, 16});
  std::vector<at::Tensor> grads;
  for (bool recompute : {false, true}) {
    unit->zero_grad();
    at::Tensor x = x0.clone().requires_grad_();
    at::Tensor y;
    {
      nn::AutocastGuard ac(c10::DeviceType::CPU, at::kBFloat16);
      y = nn::run_unit(nn::CheckpointPolicy{recompute, false}, *unit,
                       [&](const std::vector<at::Tensor>& in) { return unit->forward(in[0] * 2); }, {x});
    }
    ASSERT_EQ(y.scalar_type(), at::kBFloat16);
    y.backward(go.to(at::kBFloat16));
    grads.push_back(x.grad());
    for (const auto& p : unit->parameters()) grads.push_back(p.grad());
  }
  const size_t n = grads.size() / 2;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(grads[i].defined() && grads[n + i].defined()) << i;
    EXPECT_EQ(grads[i].scalar_type(), grads[n + i].scalar_type()) << i;
    EXPECT_TRUE(at::equal(grads[i], grads[n + i])) << i;
  }
}

}  // namespace
}  // namespace hallo::model
