// SD building blocks, the strict loader, UNet2D / VAE against goldens' hooks.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/version.h>
#include <torch/cuda.h>

#include "model/nn/autocast.h"
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <tuple>
#include <vector>

#include "model/io/hf_config.h"
#include "model/io/safetensors.h"
#include "model/nn/attention.h"
#include "model/nn/attention_kernel.h"
#include "model/nn/attention_recompute.h"
#include "model/nn/attention_small.h"
#include "model/nn/embeddings.h"
#include "model/nn/loader.h"
#include "model/nn/resnet.h"
#include "model/nn/transformer_2d.h"
#include "model/unet2d/unet_2d_condition.h"
#include "model/vae/autoencoder_kl.h"
#include "test_util.h"
#include "tools/golden/golden.h"

using namespace hallo;
using test::expect_error;

namespace {

double rel_err(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-30);
}

// Named parameters of a module as safetensors records (a "checkpoint" of it).
std::vector<io::TensorRecord> records_of(torch::nn::Module& m) {
  std::vector<io::TensorRecord> r;
  for (const auto& p : m.named_parameters(true)) r.push_back(io::from_tensor(p.key(), p.value().detach().clone()));
  return r;
}

io::StateDict state_of(std::vector<io::TensorRecord> recs, const std::string& source = "mem.safetensors") {
  io::WeightSet ws;
  ws.source = source;
  ws.tensors = std::move(recs);
  ws.sort_by_name();
  return io::StateDict(std::move(ws));
}

struct AttentionBackendGuard {
  nn::AttentionSettings saved = nn::attention_settings();
  ~AttentionBackendGuard() { nn::attention_settings() = saved; }
};

}  // namespace

TEST(Embeddings, TimestepSinusoidMatchesFormula) {
  auto t = at::tensor({0, 1, 500, 999}, at::kLong);
  const int64_t dim = 8, half = 4;
  auto e = nn::timestep_sinusoid(t, dim, /*flip=*/true, /*shift=*/0);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{4, 8}));
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < half; ++i) {
      const double ts = t[b].item<double>();
      const double f = std::exp(-std::log(10000.0) * i / half);
      EXPECT_NEAR(e[b][i].item<double>(), std::cos(ts * f), 2e-4) << b << "," << i;         // cos first (flipped)
      EXPECT_NEAR(e[b][half + i].item<double>(), std::sin(ts * f), 2e-4) << b << "," << i;  // then sin
    }
  auto unflipped = nn::timestep_sinusoid(t, dim, false, 1);
  EXPECT_NEAR(unflipped[2][1].item<double>(), std::sin(500.0 * std::exp(-std::log(10000.0) / 3.0)), 2e-4);
}

TEST(Attention, ChunkedEqualsFullScoresAndNaivePerHead) {
  AttentionBackendGuard guard;
  at::manual_seed(3);
  nn::Attention attn(nn::AttentionOptions{16, 12, 4, 8});  // cross-attention, 4 heads of 8
  attn->eval();
  c10::InferenceMode im;
  auto x = at::randn({2, 37, 16}), ctx = at::randn({2, 5, 12});
  nn::attention_settings().backend = nn::AttentionBackend::Math;
  auto full = attn->forward(x, ctx);
  nn::attention_settings().backend = nn::AttentionBackend::Chunked;
  nn::attention_settings().score_budget_bytes = 1;  // forces the 16-row minimum: 37 rows -> 3 chunks
  auto chunked = attn->forward(x, ctx);
  EXPECT_LT(rel_err(chunked, full), 1e-6);
  // Naive reference: per head softmax(q k^T / sqrt(d)) v, then to_out.
  auto q = attn->to_q->forward(x), k = attn->to_k->forward(ctx), v = attn->to_v->forward(ctx);
  std::vector<at::Tensor> heads;
  for (int h = 0; h < 4; ++h) {
    auto qs = q.narrow(2, h * 8, 8), ks = k.narrow(2, h * 8, 8), vs = v.narrow(2, h * 8, 8);
    heads.push_back(at::matmul((at::matmul(qs, ks.transpose(1, 2)) / std::sqrt(8.0)).softmax(-1), vs));
  }
  auto ref = attn->out_proj->forward(at::cat(heads, 2));
  EXPECT_LT(rel_err(full, ref), 1e-5);
}

// Plain autograd attention: the reference both custom kernels must match, forward
// and gradients (with a non-trivial upstream gradient so every term matters).
namespace {
struct AttnGrads {
  at::Tensor out, dq, dk, dv;
};
template <class F>
AttnGrads attn_with_grads(F&& f, const at::Tensor& q0, const at::Tensor& k0, const at::Tensor& v0, const at::Tensor& go) {
  torch::AutoGradMode on(true);
  auto q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
  auto out = f(q, k, v);
  out.backward(go);
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}
at::Tensor naive_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  return at::bmm((at::bmm(q, k.transpose(1, 2)) * scale).softmax(-1), v);
}
void expect_same_grads(const AttnGrads& a, const AttnGrads& b, double tol) {
  EXPECT_LT(rel_err(a.out, b.out), tol);
  EXPECT_LT(rel_err(a.dq, b.dq), tol);
  EXPECT_LT(rel_err(a.dk, b.dk), tol);
  EXPECT_LT(rel_err(a.dv, b.dv), tol);
}
}  // namespace

TEST(Attention, SmallSequenceKernelMatchesAutogradForwardAndBackward) {
  at::manual_seed(11);
  const double scale = 1.0 / std::sqrt(40.0);
  // Motion-module shapes (Lq = Lk = frames) and cross shapes with Lq != Lk, an odd
  // head width, and large scores (softmax saturation must stay finite and exact).
  for (auto [n, lq, lk, d, mag] : std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t, double>>{
           {300, 16, 16, 40, 1.0}, {7, 3, 64, 33, 1.0}, {5, 64, 2, 8, 1.0}, {9, 10, 10, 40, 30.0}}) {
    auto q = at::randn({n, lq, d}) * mag, k = at::randn({n, lk, d}), v = at::randn({n, lk, d});
    auto go = at::randn({n, lq, d});
    auto ref = attn_with_grads([&](auto& a, auto& b, auto& c) { return naive_attention(a, b, c, scale); }, q, k, v, go);
    auto got = attn_with_grads([&](auto& a, auto& b, auto& c) { return nn::small_attention(a, b, c, scale); }, q, k, v, go);
    SCOPED_TRACE(testing::Message() << n << "x" << lq << "x" << lk << "x" << d << " mag " << mag);
    expect_same_grads(got, ref, 2e-5);
    EXPECT_TRUE(at::isfinite(got.dq).all().item<bool>());
  }
  // Non-contiguous inputs (head-split views) give the same result as contiguous ones.
  auto base = at::randn({4, 16, 2, 8});
  auto qv = base.permute({0, 2, 1, 3}).reshape({8, 16, 8});
  auto qt = at::randn({8, 8, 16}).transpose(1, 2);  // strided view, not contiguous
  torch::NoGradGuard ng;
  EXPECT_LT(rel_err(nn::small_attention(qv, qt, qt, scale), naive_attention(qv, qt.contiguous(), qt.contiguous(), scale)), 2e-6);
}

TEST(Attention, RowBlockKernelsMatchAutogradInEveryBlocking) {
  at::manual_seed(12);
  const double scale = 1.0 / std::sqrt(16.0);
  auto q = at::randn({3, 200, 16}), k = at::randn({3, 90, 16}), v = at::randn({3, 90, 16});
  auto go = at::randn({3, 200, 16});
  auto ref = attn_with_grads([&](auto& a, auto& b, auto& c) { return naive_attention(a, b, c, scale); }, q, k, v, go);
  // 1 byte: the 64-row minimum -> blocks of 64, 64, 64, 8; 100 rows -> 2 blocks; huge: one block.
  for (int64_t bytes : {int64_t{1}, int64_t{100 * 90 * 4}, int64_t{1} << 30}) {
    SCOPED_TRACE(bytes);
    auto got = attn_with_grads([&](auto& a, auto& b, auto& c) { return nn::recompute_attention(a, b, c, scale, bytes); },
                               q, k, v, go);
    expect_same_grads(got, ref, 2e-5);
    // Without a graph, also under inference mode (worker threads write inference tensors).
    c10::InferenceMode im;
    EXPECT_LT(rel_err(nn::blocked_attention(q, k, v, scale, bytes), ref.out), 2e-6);
  }
  // One sequence (fewer tasks than threads) and strided inputs.
  auto q1 = at::randn({1, 130, 24}), k1 = at::randn({1, 24, 70}).transpose(1, 2), v1 = at::randn({1, 70, 24});
  auto go1 = at::randn({1, 130, 24});
  auto r1 = attn_with_grads([&](auto& a, auto& b, auto& c) { return naive_attention(a, b, c, 0.2); }, q1, k1, v1, go1);
  auto g1 = attn_with_grads([&](auto& a, auto& b, auto& c) { return nn::recompute_attention(a, b, c, 0.2, 1); }, q1,
                            k1, v1, go1);
  expect_same_grads(g1, r1, 2e-5);
}

// FeedForward's GEGLU keeps only its projection for backward; the gradients must be
// the bits plain autograd gives.
TEST(FeedForward, GegluBackwardEqualsAutogradBitwise) {
  at::manual_seed(13);
  nn::FeedForward ff(24);
  auto x0 = at::randn({2, 7, 24});
  auto go = at::randn({2, 7, 24});
  torch::AutoGradMode on(true);
  auto x = x0.clone().requires_grad_();
  ff->forward(x).backward(go);
  const at::Tensor dx = x.grad().clone(), dw = ff->net[0]->named_parameters()["proj.weight"].grad().clone();
  ff->zero_grad();
  auto xr = x0.clone().requires_grad_();
  auto ag = ff->net[0]->named_parameters()["proj.weight"];  // plain composition of the same modules
  auto h = at::linear(xr, ag, ff->net[0]->named_parameters()["proj.bias"]).chunk(2, -1);
  auto out = ff->net[2]->as<torch::nn::Linear>()->forward(h[0] * at::gelu(h[1]));
  out.backward(go);
  EXPECT_TRUE(at::equal(dx, xr.grad()));
  EXPECT_TRUE(at::equal(dw, ag.grad()));
}

TEST(Loader, StrictErrorNamesEveryRenamedAndReshapedKey) {
  at::manual_seed(0);
  model::UNet2DConditionModel unet(model::UNet2DConfig::tiny());
  auto recs = records_of(*unet);
  for (auto& r : recs) {
    if (r.name == "conv_in.weight") r.name = "conv_in.weight_renamed";
    if (r.name == "time_embedding.linear_1.bias") r = io::from_tensor(r.name, at::zeros({7}));
  }
  auto sd = state_of(recs, "bad_unet.safetensors");
  model::UNet2DConditionModel fresh(model::UNet2DConfig::tiny());
  expect_error([&] { nn::load_weights(*fresh, sd); },
               {"bad_unet.safetensors", "missing", "conv_in.weight", "unexpected", "conv_in.weight_renamed", "mis-shaped",
                "time_embedding.linear_1.bias: file [7] vs model [128]"});
  // Non-strict: everything else loads, the report names the three problems.
  auto rep = nn::load_weights(*fresh, sd, {false, {}});
  // A mis-shaped tensor is reported as such, not also as missing (like torch's load_state_dict).
  EXPECT_EQ(rep.missing, (std::vector<std::string>{"conv_in.weight"}));
  EXPECT_EQ(rep.unexpected, (std::vector<std::string>{"conv_in.weight_renamed"}));
  EXPECT_EQ(rep.mismatched.size(), 1u);
  EXPECT_EQ(rep.loaded, recs.size() - 2);
  EXPECT_TRUE(at::equal(fresh->conv_out->weight, unet->conv_out->weight));
}

TEST(Loader, ConvertsDtypeOnLoad) {
  at::manual_seed(1);
  model::UNet2DConditionModel unet(model::UNet2DConfig::tiny());
  auto recs = records_of(*unet);
  for (auto& r : recs) r = io::from_tensor(r.name, io::to_tensor(r).to(at::kHalf));  // an fp16 checkpoint
  model::UNet2DConditionModel fresh(model::UNet2DConfig::tiny());
  auto rep = nn::load_weights(*fresh, state_of(recs));
  EXPECT_TRUE(rep.ok());
  EXPECT_EQ(fresh->conv_in->weight.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(fresh->conv_in->weight, unet->conv_in->weight, 1e-3, 1e-3));
}

TEST(UNet2D, OddLatentSizesUpsampleToTheSkip) {
  at::manual_seed(2);
  model::UNet2DConditionModel unet(model::UNet2DConfig::tiny());
  unet->eval();
  c10::InferenceMode im;
  auto y = unet->forward(at::randn({1, 4, 15, 13}), at::tensor({10}, at::kLong), at::randn({1, 3, 40}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 4, 15, 13}));
  EXPECT_TRUE(at::isfinite(y).all().item<bool>());
}

TEST(UNet2D, LinearProjectionMatchesConvProjection) {
  // Same weights, proj_in/proj_out as 1x1 conv vs Linear (SD2-style configs) -> same output.
  auto cfg = model::UNet2DConfig::tiny();
  at::manual_seed(4);
  model::UNet2DConditionModel conv(cfg);
  cfg.use_linear_projection = true;
  model::UNet2DConditionModel lin(cfg);
  std::vector<io::TensorRecord> recs;
  for (auto& r : records_of(*conv)) {
    if (r.name.find("proj_in.weight") != std::string::npos || r.name.find("proj_out.weight") != std::string::npos)
      r = io::from_tensor(r.name, io::to_tensor(r).flatten(1));  // [out, in, 1, 1] -> [out, in]
    recs.push_back(r);
  }
  nn::load_weights(*lin, state_of(recs));
  conv->eval();
  lin->eval();
  c10::InferenceMode im;
  auto x = at::randn({2, 4, 8, 8}), ctx = at::randn({2, 3, 40});
  auto t = at::tensor({5, 900}, at::kLong);
  auto yc = conv->forward(x, t, ctx);
  auto yl = lin->forward(x, t, ctx);
  ASSERT_TRUE(at::isfinite(yc).all().item<bool>());
  ASSERT_TRUE(at::isfinite(yl).all().item<bool>());
  EXPECT_LT(rel_err(yl, yc), 1e-5);
}

TEST(UNet2D, ConfigErrorsNameFileAndField) {
  nlohmann::json j = {{"block_out_channels", {32, 64}}, {"down_block_types", {"DownBlock2D", "DownBlock2D"}},
                      {"up_block_types", {"UpBlock2D", "UpBlock2D"}}, {"norm_num_groups", 8}};
  EXPECT_NO_THROW(model::UNet2DConfig::from_json(j, "unet/config.json"));
  auto bad = j;
  bad["class_embed_type"] = "timestep";
  expect_error([&] { model::UNet2DConfig::from_json(bad, "unet/config.json"); }, {"unet/config.json", "class_embed_type"});
  bad = j;
  bad["up_block_types"] = {"UpBlock2D"};
  expect_error([&] { model::UNet2DConfig::from_json(bad, "unet/config.json"); }, {"up_block_types"});
  bad = j;
  bad["attention_head_dim"] = {8, 7};
  expect_error([&] { model::UNet2DConfig::from_json(bad, "unet/config.json"); }, {"not divisible by 7 heads"});
  bad = j;
  bad["layers_per_block"] = "2";
  expect_error([&] { model::UNet2DConfig::from_json(bad, "unet/config.json"); }, {"'layers_per_block'", "expected an integer"});
  // attention_head_dim as a list (SD2) gives per-block heads.
  auto sd2 = j;
  sd2["attention_head_dim"] = {4, 8};
  EXPECT_EQ(model::UNet2DConfig::from_json(sd2, "c").num_attention_heads, (std::vector<int64_t>{4, 8}));
}

TEST(Goldens, UNet2DEveryBlockHookMatches) {
  const auto dir = test::golden_dir();
  if (!std::filesystem::exists(dir / "sd_unet2d.io.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  auto c = golden::load_case(dir, "sd_unet2d");
  c.want_hooks = true;
  auto out = golden::run_unet2d(c);
  int hooks = 0;
  for (const auto& [k, v] : c.io) {
    if (k.rfind("hook.", 0) != 0) continue;
    ASSERT_TRUE(out.count(k)) << k;
    EXPECT_LT(rel_err(out.at(k), v), 1e-4) << k;
    ++hooks;
  }
  EXPECT_EQ(hooks, 13);  // time_embedding, conv_in, 4 down, mid, 4 up, conv_norm_out, conv_out
  EXPECT_LT(rel_err(out.at("out.sample"), c.io.at("out.sample")), 1e-4);
}

TEST(Goldens, VaeLegacyAttentionNamesLoadTheSameWeights) {
  const auto dir = test::golden_dir();
  if (!std::filesystem::exists(dir / "vae.weights_legacy_names.safetensors")) GTEST_SKIP() << "no ../shared/golden";
  auto cfg = model::VaeConfig::from_json(io::load_json_file(dir / "vae.config.json"), "vae.config.json");
  model::AutoencoderKL a(cfg), b(cfg);
  nn::load_weights(*a, io::StateDict::open(dir / "vae.weights.safetensors"));
  auto legacy = io::StateDict::open(dir / "vae.weights_legacy_names.safetensors");
  EXPECT_TRUE(legacy.contains("decoder.mid_block.attentions.0.proj_attn.weight"));
  expect_error([&] { nn::load_weights(*b, legacy); }, {"proj_attn"});  // untranslated: strict failure
  nn::load_weights(*b, legacy, {true, model::vae_translate_legacy_key});
  auto pa = a->named_parameters(true), pb = b->named_parameters(true);
  for (const auto& p : pa) EXPECT_TRUE(at::equal(p.value(), pb[p.key()])) << p.key();
  EXPECT_EQ(model::vae_translate_legacy_key("encoder.mid_block.attentions.0.query.bias"), "encoder.mid_block.attentions.0.to_q.bias");
  EXPECT_EQ(model::vae_translate_legacy_key("encoder.down_blocks.0.resnets.0.conv1.weight"), "encoder.down_blocks.0.resnets.0.conv1.weight");
}

TEST(Vae, ReleasedDecoderFreesItsWeightsAndKeepsTheEncoder) {
  model::VaeConfig cfg = model::VaeConfig::from_json(
      {{"block_out_channels", {8, 16}}, {"norm_num_groups", 4}, {"layers_per_block", 1}}, "test");
  torch::manual_seed(3);
  model::AutoencoderKL vae(cfg);
  vae->eval();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::rand({1, 3, 16, 16}) * 2 - 1;
  const auto before = vae->encode(x);
  int64_t decoder_values = 0, all = 0;
  for (const auto& p : vae->decoder->parameters()) decoder_values += p.numel();
  for (const auto& p : vae->parameters()) all += p.numel();
  ASSERT_GT(decoder_values, all / 3);
  const int64_t post_quant = vae->post_quant_conv->weight.numel() + vae->post_quant_conv->bias.numel();
  vae->release_decoder();
  EXPECT_FALSE(vae->has_decoder());
  int64_t left = 0;
  for (const auto& p : vae->parameters()) left += p.numel();
  EXPECT_EQ(left, all - decoder_values - post_quant);
  const auto after = vae->encode(x);
  EXPECT_TRUE(at::equal(before.mean, after.mean));
  EXPECT_TRUE(at::equal(before.logvar, after.logvar));
  expect_error([&] { vae->decode(after.mean); }, {"decoder was released"});
}

TEST(Vae, PosteriorSampleUsesMeanAndStd) {
  model::DiagonalGaussian g{at::full({1, 4, 2, 2}, 3.0), at::full({1, 4, 2, 2}, std::log(4.0))};
  EXPECT_NEAR(g.std().mean().item<double>(), 2.0, 1e-6);
  auto gen = at::detail::createCPUGenerator(7);
  auto s = g.sample(gen);
  auto gen2 = at::detail::createCPUGenerator(7);
  auto eps = at::randn({1, 4, 2, 2}, gen2);
  EXPECT_TRUE(at::allclose(s, 3.0 + 2.0 * eps));
}

// Regression guard: attention once used diffusers' baddbmm(empty, beta=0) and this
// model's outputs were intermittently NaN. Poison freed memory with NaN first so
// an uninitialised read has a chance to show.
TEST(Runtime, TinyUNetStaysFiniteAfterAllocatorPoisoning) {
  at::manual_seed(4);
  model::UNet2DConditionModel unet(model::UNet2DConfig::tiny());
  unet->eval();
  torch::NoGradGuard ng;
  // Poison the allocator's free lists with NaN so an uninitialised read shows up.
  for (int i = 0; i < 8; ++i) {
    auto junk = at::full({16, 4, 4 << i}, std::numeric_limits<float>::quiet_NaN());
    (void)junk;
  }
  model::Hooks hooks;
  unet->forward(at::randn({2, 4, 16, 16}), at::tensor({5, 900}, at::kLong), at::randn({2, 3, 40}), &hooks);
  for (const auto& [k, v] : hooks) EXPECT_TRUE(at::isfinite(v).all().item<bool>()) << k;
  // The kernel itself, on the shape that failed ([16, 4, 4] scores).
  auto q = at::randn({16, 4, 8}), k = at::randn({16, 4, 8});
  for (int i = 0; i < 50; ++i) {
    { auto junk = at::full({16, 4, 4}, std::numeric_limits<float>::quiet_NaN()); }
    EXPECT_TRUE(at::isfinite(nn::attention(q, k, k)).all().item<bool>());
  }
}

// A frozen resnet's own backward (keeps x and h, recomputes GroupNorm + SiLU) gives
// the bits of plain autograd, with and without the shortcut conv and output scale.
TEST(Resnet, FrozenBackwardEqualsAutogradBitwise) {
  at::manual_seed(14);
  for (auto [cin, cout, scale] : std::vector<std::tuple<int64_t, int64_t, double>>{{32, 32, 1.0}, {32, 64, 2.0}}) {
    nn::ResnetBlock2D r(nn::ResnetOptions{cin, cout, 16, 8, 1e-5, scale});
    for (auto& p : r->parameters()) p.set_requires_grad(false);
    ASSERT_TRUE(r->frozen());
    auto x0 = at::randn({3, cin, 6, 5}), temb = at::randn({3, 16}), go = at::randn({3, cout, 6, 5});
    torch::AutoGradMode on(true);
    auto x = x0.clone().requires_grad_(), xr = x0.clone().requires_grad_();
    auto y = r->forward(x * 1.5, temb);  // through the frozen path (input is a non-leaf)
    auto yr = r->forward_plain(xr * 1.5, temb);
    EXPECT_TRUE(at::equal(y, yr));
    EXPECT_NE(y.grad_fn()->name(), yr.grad_fn()->name());  // really two different graphs
    y.backward(go);
    yr.backward(go);
    EXPECT_TRUE(at::equal(x.grad(), xr.grad())) << cin << "->" << cout;
  }
}

// Under bf16 autocast (the CUDA trainer's mixed precision), the frozen resnet's own
// backward runs outside autocast, as every autograd backward does: it must recompute and
// cast as the forward did and give plain autograd's input gradient (dtype and values).
// Runs on a GPU when there is one; libtorch 1.13's CPU autocast cannot run GroupNorm on
// bf16 input (nor can the plain block), so a 1.13 CPU build skips it.
TEST(Resnet, FrozenBackwardUnderAutocastMatchesAutograd) {
  const bool cuda = torch::cuda::is_available();
  if (!cuda && TORCH_VERSION_MAJOR < 2) GTEST_SKIP() << "libtorch 1.13 CPU autocast fails in GroupNorm (runs on CUDA)";
  const c10::Device dev = cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  at::manual_seed(15);
  for (auto [cin, cout] : std::vector<std::pair<int64_t, int64_t>>{{32, 32}, {32, 64}}) {
    nn::ResnetBlock2D r(nn::ResnetOptions{cin, cout, 16, 8, 1e-5, 1.0});
    r->to(dev);
    for (auto& p : r->parameters()) p.set_requires_grad(false);
    auto x0 = at::randn({2, cin, 6, 5}).to(dev), temb = at::randn({2, 16}).to(dev), go = at::randn({2, cout, 6, 5}).to(dev);
    torch::AutoGradMode on(true);
    auto x = x0.clone().requires_grad_(), xr = x0.clone().requires_grad_();
    at::Tensor y, yr;
    {
      nn::AutocastGuard g(dev.type(), at::kBFloat16);
      yr = r->forward_plain(xr * 1.5, temb);
      y = r->forward(x * 1.5, temb);
    }
    EXPECT_NE(y.grad_fn()->name(), yr.grad_fn()->name());
    EXPECT_EQ(y.scalar_type(), yr.scalar_type());
    EXPECT_TRUE(at::equal(y, yr));
    y.backward(go.to(y.scalar_type()));
    yr.backward(go.to(yr.scalar_type()));
    ASSERT_TRUE(x.grad().defined());
    EXPECT_EQ(x.grad().scalar_type(), at::kFloat);
    EXPECT_TRUE(at::allclose(x.grad(), xr.grad(), 1e-2, 1e-2))
        << cin << "->" << cout << ": " << (x.grad() - xr.grad()).abs().max().item<float>();
  }
}

// libtorch 2.x on a GPU: Auto is the fused SDPA (4-D, so a fused kernel can take it),
// sliced above 32768 sequences; forward and backward match the math path computed in
// float32. Needs a GPU (the device check runs it).
TEST(Attention, FusedSdpaOnCudaMatchesMathIncludingSlicedBatches) {
  if (!torch::cuda::is_available() || !nn::sdpa_available()) GTEST_SKIP() << "no GPU or no SDPA (libtorch < 2)";
  const c10::Device gpu(c10::kCUDA, 0);
  at::manual_seed(16);
  for (auto [n, l, d] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{8, 77, 40}, {40000, 16, 40}}) {
    for (auto dtype : {at::kFloat, at::kBFloat16}) {
      auto q = at::randn({n, l, d}).to(gpu, dtype).requires_grad_(), k = at::randn({n, l, d}).to(gpu, dtype).requires_grad_(),
           v = at::randn({n, l, d}).to(gpu, dtype).requires_grad_();
      const auto go = at::randn({n, l, d}).to(gpu, dtype);
      nn::attention_settings().backend = nn::AttentionBackend::Auto;
      auto y = nn::attention(q, k, v);
      auto g = torch::autograd::grad({y}, {q, k, v}, {go});
      auto qf = q.detach().to(at::kFloat).requires_grad_(), kf = k.detach().to(at::kFloat).requires_grad_(),
           vf = v.detach().to(at::kFloat).requires_grad_();
      nn::attention_settings().backend = nn::AttentionBackend::Math;
      auto yr = nn::attention(qf, kf, vf);
      auto gr = torch::autograd::grad({yr}, {qf, kf, vf}, {go.to(at::kFloat)});
      nn::attention_settings().backend = nn::AttentionBackend::Auto;
      const double tol = dtype == at::kFloat ? 1e-4 : 3e-2;
      EXPECT_EQ(y.scalar_type(), dtype);
      EXPECT_TRUE(at::allclose(y.to(at::kFloat), yr, tol, tol)) << n << " " << dtype;
      for (int i = 0; i < 3; ++i) EXPECT_TRUE(at::allclose(g[i].to(at::kFloat), gr[i], 5 * tol, 5 * tol)) << n << " " << i;
    }
  }
}
