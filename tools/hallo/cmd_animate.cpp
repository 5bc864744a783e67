// hallo animate --ref portrait.jpg --audio speech.wav --out talk.mp4 --model DIR
//               [--net net.pth --vae DIR --wav2vec2 DIR [--motion-module mm.ckpt]]
//               [--config configs/inference/default.yaml] [--jobs list.jsonl] [controls]
#include <spdlog/spdlog.h>

#include <filesystem>
#include <regex>

#include "core/error.h"
#include "inference/animate_job.h"
#include "model/nn/lora.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

namespace fs = std::filesystem;

Command register_animate(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string ref, audio, out, jobs, model, config, arcface, size, dtype, device, lora;
    std::optional<double> lora_scale;
    inference::UpstreamPaths up;
    std::string net, net_config, vae, wav2vec2, motion_module;
    std::optional<int> steps, frames_per_clip, motion_frames, motion_noise;
    std::optional<double> cfg, audio_cfg, image_cfg, pose, face, lip, fps;
    std::optional<uint64_t> seed;
    int shuffle_audio = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("animate", "Animate a portrait from speech: image + audio -> mp4 with the audio");
  sub->add_option("--ref", o->ref, "reference portrait (any image OpenCV reads)");
  sub->add_option("--audio", o->audio, "driving speech (any audio or video file)");
  sub->add_option("--out", o->out, "mp4 to write (written under a temp name, renamed when complete)");
  sub->add_option("--jobs", o->jobs, "JSONL list of {\"ref\", \"audio\", \"out\"[, \"seed\"]}: many videos, model loaded once");
  auto* g = sub->add_option_group("weights");
  g->add_option("--model", o->model, "model folder written by `hallo train` (final/ or checkpoints/*)");
  g->add_option("--net", o->net, "upstream layout: net.pth (net.pth keys, .pth or .safetensors)");
  g->add_option("--net-config", o->net_config, "upstream layout: HalloNetConfig JSON (default: SD1.5 sizes)");
  g->add_option("--vae", o->vae, "upstream layout: VAE folder (sd-vae-ft-mse)");
  g->add_option("--wav2vec2", o->wav2vec2, "upstream layout: wav2vec2-base-960h folder");
  g->add_option("--motion-module", o->motion_module, "upstream layout: mm_sd_v15_v2.ckpt (loaded before --net)");
  g->add_option("--lora", o->lora, "LoRA adapters (.safetensors, PEFT names) on top of the net");
  g->add_option("--lora-scale", o->lora_scale, "multiplier on the adapters (--lora's or the model folder's; 0: the base net)");
  sub->add_option("--config", o->config, "inference config (configs/inference/default.yaml); flags override it");
  sub->add_option("--arcface", o->arcface, "ArcFace ONNX for the face embedding (default: the model folder's, else zeros)");
  sub->add_option("--steps", o->steps, "DDIM steps (upstream 40)")->check(CLI::PositiveNumber);
  sub->add_option("--cfg", o->cfg, "guidance scale, one batched [uncond, cond] pass (upstream 3.5)");
  sub->add_option("--audio-cfg", o->audio_cfg, "separate audio guidance (with --image-cfg; paper Table 6)");
  sub->add_option("--image-cfg", o->image_cfg, "separate reference-image guidance (with --audio-cfg)");
  sub->add_option("--pose-weight", o->pose, "weight of the pose (whole-frame) audio branch");
  sub->add_option("--face-weight", o->face, "weight of the face audio branch");
  sub->add_option("--lip-weight", o->lip, "weight of the lip audio branch");
  sub->add_option("--seed", o->seed, "noise seed (same seed, inputs and CPU: the same bits)");
  sub->add_option("--size", o->size, "frame size WxH or N (default: the model's training size)");
  sub->add_option("--frames-per-clip", o->frames_per_clip, "frames generated per clip")->check(CLI::PositiveNumber);
  sub->add_option("--motion-frames", o->motion_frames, "motion frames carried between clips")->check(CLI::PositiveNumber);
  sub->add_option("--fps", o->fps, "output frame rate (default 25)")->check(CLI::PositiveNumber);
  sub->add_option("--motion-noise", o->motion_noise,
                  "Hallo2-style: noise the motion frames to this training timestep (e.g. 25); off by default")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--shuffle-audio", o->shuffle_audio,
                  "lip-sync control: shuffle the audio features in blocks of N frames (the mp4 keeps the original "
                  "audio; `hallo eval --metrics lipsync` then measures chance)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--dtype", o->dtype, "fp32 | fp16 | bf16")->check(CLI::IsMember({"fp32", "fp16", "bf16", "float32", "float16", "bfloat16"}));
  sub->add_option("--device", o->device, "cpu, cuda or cuda:N");
  return [o]() {
    inference::AnimateConfig cfg =
        o->config.empty() ? inference::AnimateConfig::defaults() : inference::AnimateConfig::from_file(o->config);
    if (o->steps) cfg.inference_steps = *o->steps;
    if (o->cfg) cfg.cfg_scale = *o->cfg;
    if (o->audio_cfg) cfg.audio_cfg_scale = *o->audio_cfg;
    if (o->image_cfg) cfg.image_cfg_scale = *o->image_cfg;
    if (o->pose) cfg.pose_weight = *o->pose;
    if (o->face) cfg.face_weight = *o->face;
    if (o->lip) cfg.lip_weight = *o->lip;
    if (o->seed) cfg.seed = *o->seed;
    if (o->frames_per_clip) cfg.n_sample_frames = *o->frames_per_clip;
    if (o->motion_frames) cfg.n_motion_frames = *o->motion_frames;
    if (o->fps) cfg.fps = *o->fps;
    if (o->motion_noise) cfg.motion_noise_timestep = *o->motion_noise;
    if (!o->dtype.empty())
      cfg.weight_dtype = o->dtype == "float32" ? "fp32" : o->dtype == "float16" ? "fp16" : o->dtype == "bfloat16" ? "bf16" : o->dtype;
    if (!o->device.empty()) cfg.device = o->device;
    if (!o->size.empty()) {
      std::smatch m;
      if (std::regex_match(o->size, m, std::regex(R"((\d+)(?:x(\d+))?)"))) {
        cfg.width = std::stoi(m[1]);
        cfg.height = m[2].matched ? std::stoi(m[2]) : cfg.width;
      } else {
        fail("--size: expected WxH or N, got '{}'", o->size);
      }
    }
    cfg.validate("command line");

    std::vector<inference::AnimateJob> jobs;
    if (!o->jobs.empty()) {
      if (!o->ref.empty() || !o->audio.empty() || !o->out.empty()) fail("--jobs replaces --ref/--audio/--out; give one or the other");
      jobs = inference::read_job_list(o->jobs);
      for (auto& j : jobs) j.shuffle_audio_blocks = o->shuffle_audio;
    } else {
      if (o->ref.empty() || o->audio.empty() || o->out.empty()) fail("animate needs --ref, --audio and --out (or --jobs)");
      jobs.push_back({o->ref, o->audio, o->out, std::nullopt, o->shuffle_audio});
    }
    // Inputs are checked before the model loads, so a typo costs nothing.
    for (const auto& j : jobs) {
      if (!fs::exists(j.ref)) fail_at(j.ref.string(), "no such image file (--ref)");
      if (!fs::exists(j.audio)) fail_at(j.audio.string(), "no such audio file (--audio)");
    }
    inference::LoadedModel model;
    if (!o->model.empty()) {
      if (!o->net.empty()) fail("give --model or --net, not both");
      model = inference::load_model_folder(o->model);
    } else {
      model = inference::load_upstream({o->net, o->net_config, o->vae, o->wav2vec2, o->motion_module});
    }
    if (!o->lora.empty()) {
      nn::load_lora(*model.net, nn::read_lora(o->lora), o->lora_scale.value_or(1.0));
      model.source += " + LoRA " + o->lora;
    } else if (o->lora_scale && nn::set_lora_multiplier(*model.net, *o->lora_scale) == 0) {
      fail("--lora-scale: {} has no LoRA adapters (give --lora FILE)", model.source);
    }
    inference::AnimateSession session(std::move(model), cfg, o->arcface);
    int failed = 0;
    for (size_t i = 0; i < jobs.size(); ++i) {
      try {
        const auto r = session.run(jobs[i]);
        spdlog::info("[{}/{}] {}: {} frames ({} clips) in {:.1f} s", i + 1, jobs.size(), r.video.string(), r.frames,
                     r.clips, r.seconds);
      } catch (const std::exception& e) {
        if (jobs.size() == 1) throw;
        spdlog::error("[{}/{}] {}", i + 1, jobs.size(), e.what());  // one bad job does not stop the list
        ++failed;
      }
    }
    if (failed) spdlog::error("{} of {} jobs failed", failed, jobs.size());
    return failed ? 1 : 0;
  };
}

}  // namespace hallo::cli
