// `hallo animate`'s inference path (inference::Animator: reference net, UNet3D with
// CFG, DDIM, VAE decode, clip chaining) on random weights: seconds per generated frame
// and peak memory, each case in its own process.
//   tiny:    the demo's networks (recipes/demo) at 128^2, 4 frames per clip
//   full256: SD1.5-size Hallo net + sd-vae-ft-mse at 256^2, 16 frames per clip,
//            wav2vec2-shaped audio (12 layers x 768, window 5)
// A run of N steps costs fixed + N * per_step; both are measured (runs at --steps-a and
// --steps-b steps) and the cost at --target-steps (upstream: 40) is extrapolated.
// Baseline in the same run: the same render with the attention in upstream's form
// (full score matrices, HALLO_ATTENTION=math), at --steps-a.
//   bench_animate --cases tiny,full256 [--steps-a 1 --steps-b 2] [--clips N]
//   bench_animate --cases full512 --device cuda --dtype bf16   (a CUDA build: issue 11's GPU goal,
//            <= 0.25 s per frame and 6 GB; the peak column is then the GPU allocator's)
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "bench/isolated_run.h"
#include "core/device.h"
#include "core/runtime.h"
#include "inference/animator.h"
#include "model/hallo/hallo_net.h"
#include "model/nn/attention_kernel.h"
#include "model/nn/autocast.h"
#include "model/vae/autoencoder_kl.h"
#include "trainer/model_setup.h"
#include "trainer/train_config.h"

using namespace hallo;

namespace {

std::string g_device = "cpu", g_dtype = "fp32";  // resolved in each case's process (no CUDA before fork)

struct Case {
  std::string name;
  int size = 128, frames_per_clip = 4, motion_frames = 2;
  int audio_layers = 1, audio_dim = 40, audio_radius = 2;
  std::function<model::HalloNetConfig()> net;
  model::VaeConfig vae;
};

Case tiny_case() {
  // The demo's networks, from its own configs (recipes/demo/{vae,stage1,stage2}.yaml).
  const std::filesystem::path demo = std::filesystem::path(HALLO_SOURCE_DIR) / "recipes" / "demo";
  Case c;
  c.name = "tiny";
  c.net = [demo] {
    trainer::TrainConfig s2 = trainer::TrainConfig::load(demo / "stage2.yaml");
    s2.model.unet = trainer::TrainConfig::load(demo / "stage1.yaml").model.unet;
    trainer::DataShape shape;
    shape.audio_layers = 1;  // log-mel: one "layer" of 40 mel bands
    shape.audio_dim = 40;
    shape.height = shape.width = 128;
    return model::HalloNetConfig::from_json(trainer::net_config_for(s2, shape), "demo net");
  };
  c.frames_per_clip = trainer::TrainConfig::load(demo / "stage2.yaml").data.n_sample_frames;
  c.vae = model::VaeConfig::from_json(trainer::TrainConfig::load(demo / "vae.yaml").model.vae, "recipes/demo/vae.yaml");
  return c;
}

Case full_case(int size) {
  Case c;
  c.name = fmt::format("full{}", size);
  c.size = size;
  c.frames_per_clip = 16;
  c.audio_layers = 12;
  c.audio_dim = 768;
  c.net = [] { return model::HalloNetConfig::hallo(); };
  c.vae = model::VaeConfig::sd_vae_ft_mse();
  return c;
}

// One render of `clips` clips with `steps` DDIM steps; returns its seconds (models built first).
double render(const Case& c, int steps, int clips, nn::AttentionBackend backend) {
  nn::attention_settings().backend = backend;
  at::manual_seed(0);
  model::HalloNet net(c.net());
  model::AutoencoderKL vae(c.vae);
  net->eval();
  vae->eval();
  const c10::Device dev = resolve_device(g_device);
  const c10::ScalarType dtype = nn::mixed_precision_dtype(g_dtype.c_str());
  net->to(dev, dtype);
  vae->to(dev, dtype);
  inference::AnimateSettings s;
  s.device = dev;
  s.dtype = dtype;
  s.frames_per_clip = c.frames_per_clip;
  s.motion_frames = c.motion_frames;
  s.clip.num_inference_steps = steps;
  s.clip.guidance_scale = 3.5;
  sched::SchedulerConfig sc = sched::SchedulerConfig::from_json(
      {{"beta_schedule", "linear"}, {"rescale_betas_zero_snr", true}, {"timestep_spacing", "trailing"},
       {"prediction_type", "v_prediction"}, {"steps_offset", 1}, {"clip_sample", false}},
      "bench");
  inference::Animator animator(net, vae, sc, s);
  inference::AnimateInputs in;
  const int64_t n = static_cast<int64_t>(clips) * c.frames_per_clip;
  in.reference = at::rand({3, c.size, c.size}) * 2 - 1;
  in.face_emb = at::zeros({1, 512});
  in.face_region = at::zeros({1, 3, c.size, c.size});
  in.face_region.narrow(2, c.size / 4, c.size / 2).narrow(3, c.size / 4, c.size / 2).fill_(1);
  for (int l = 0, h = c.size / 8; l < 4; ++l, h = (h + 1) / 2) {
    in.masks.full.push_back(at::ones({1, h * h}));
    in.masks.face.push_back(at::rand({1, h * h}).gt(0.5).to(at::kFloat));
    in.masks.lip.push_back(at::rand({1, h * h}).gt(0.8).to(at::kFloat));
  }
  in.audio_windows = at::randn({n, 2 * c.audio_radius + 1, c.audio_layers, c.audio_dim});
  in.frames = n;
  reset_device_peak(dev);
  const auto t0 = std::chrono::steady_clock::now();
  const at::Tensor frames = animator.render(in);  // on the CPU: the device has finished
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (const auto peak = device_peak(dev)) bench::reported_device_peak_gib() = peak->allocated / double(1 << 30);
  if (frames.size(0) != n) throw std::runtime_error(fmt::format("rendered {} frames, expected {}", frames.size(0), n));
  return secs;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"hallo animate inference benchmark: seconds per frame and peak memory"};
  std::vector<std::string> cases{"tiny", "full256"};
  int steps_a = 1, steps_b = 2, target = 40, clips_opt = 0, threads = 0;
  bool baseline = true;
  app.add_option("--cases", cases, "tiny, full256, full512")->delimiter(',');
  app.add_option("--steps-a", steps_a, "DDIM steps of the first run (and the baseline)")->check(CLI::PositiveNumber);
  app.add_option("--steps-b", steps_b, "DDIM steps of the second run")->check(CLI::PositiveNumber);
  app.add_option("--target-steps", target, "report the cost extrapolated to this many steps (upstream: 40)");
  app.add_option("--clips", clips_opt, "clips per render (default: tiny 8, full 1; >= 2 exercises the motion-frame chaining)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", threads, "intra-op threads (0: HALLO_THREADS or all cores)");
  app.add_flag("!--no-baseline", baseline, "skip the upstream-form attention baseline");
  app.add_option("--device", g_device, "cpu, cuda or cuda:N (a CUDA build of libtorch)")->capture_default_str();
  app.add_option("--dtype", g_dtype, "the networks' dtype: fp32, bf16 or fp16 (upstream: fp16 on GPUs)")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (steps_b <= steps_a) {
    fmt::print(stderr, "--steps-b must be larger than --steps-a\n");
    return 2;
  }
  const RuntimeInfo rt = configure_runtime(threads);
  fmt::print("threads: {}, device {}, {}\n\n", rt.threads, g_device, g_dtype);

  fmt::print("| case | frames | steps | seconds | s/frame | s/frame/step | s/frame at {} steps | peak GiB | "
             "baseline (upstream attention) s/frame at {} steps | speed-up |\n|---|---|---|---|---|---|---|---|---|---|\n",
             target, steps_a);
  for (const auto& name : cases) {
    Case c;
    if (name == "tiny") c = tiny_case();
    else if (name == "full256") c = full_case(256);
    else if (name == "full512") c = full_case(512);
    else {
      fmt::print(stderr, "unknown case '{}'\n", name);
      return 2;
    }
    const int clips = clips_opt > 0 ? clips_opt : c.name == "tiny" ? 8 : 1;
    const double frames = static_cast<double>(clips) * c.frames_per_clip;
    const auto a = bench::run_isolated([&] { return render(c, steps_a, clips, nn::AttentionBackend::Auto); });
    const auto b = bench::run_isolated([&] { return render(c, steps_b, clips, nn::AttentionBackend::Auto); });
    bench::CaseResult base;
    if (baseline) base = bench::run_isolated([&] { return render(c, steps_a, clips, nn::AttentionBackend::Math); });
    if (a.seconds < 0 || b.seconds < 0) {
      fmt::print("| {} | failed (see stderr) |\n", c.name);
      continue;
    }
    const double per_step = (b.seconds - a.seconds) / (steps_b - steps_a) / frames;
    const double fixed = a.seconds / frames - steps_a * per_step;
    // On a GPU the peak is the caching allocator's (host RSS in parentheses).
    auto peak = [](double host, double gpu) {
      return gpu > 0 ? fmt::format("{:.2f} ({:.2f} host)", gpu, host) : fmt::format("{:.2f}", host);
    };
    fmt::print("| {} {}^2 | {} | {} | {:.1f} | {:.2f} | {:.3f} | **{:.1f}** | {} | {} | {} |\n", c.name, c.size,
               frames, steps_b, b.seconds, b.seconds / frames, per_step, fixed + target * per_step,
               peak(std::max(a.peak_gib, b.peak_gib), std::max(a.device_peak_gib, b.device_peak_gib)),
               base.seconds > 0 ? fmt::format("{:.2f} ({} GiB)", base.seconds / frames, peak(base.peak_gib, base.device_peak_gib))
                                : "-",
               base.seconds > 0 ? fmt::format("{:.2f}x", base.seconds / a.seconds) : "-");
    std::fflush(stdout);
  }
  return 0;
}
