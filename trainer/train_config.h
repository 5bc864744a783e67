#pragma once
// Settings of `hallo train` (configs/train/*.yaml). Keys and defaults follow
// upstream's configs/train/stage1.yaml and stage2.yaml, so an upstream config
// reads with few changes: shard directories (`data.shards`) replace the meta
// JSON paths, and a few project keys are added (stage, quirks, model, val.*).
//
// Unknown keys are errors naming the key and the file. Upstream keys this
// project does not implement get a one-line warning saying why.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "losses/vae_loss.h"
#include "model/nn/lora_config.h"
#include "trainer/ema_config.h"
#include "trainer/loss_scaler.h"
#include "model/schedulers/scheduler_config.h"

namespace hallo::trainer {

struct DataConfig {
  std::vector<std::string> shards;  // `hallo prepare` output directories
  int train_bs = 4;
  int train_width = 512, train_height = 512;
  int sample_rate = 16000;
  int fps = 25;
  int n_sample_frames = 14, n_motion_frames = 2;
  int audio_margin = 2;    // audio window radius: frames i-m .. i+m
  int sample_margin = 30;  // stage 1: |reference - target| >= this many frames
  // Where the target/reference latents come from: "shards" (posteriors stored by
  // `hallo prepare --vae`), "vae" (encode on the fly, as upstream), "auto" (shards when
  // every clip has them).
  std::string latents = "auto";
  // Corrupt clips (checksum) are skipped and counted; above this fraction of the
  // dataset the run stops.
  double max_bad_clip_fraction = 0.01;
};

struct SolverConfig {
  int gradient_accumulation_steps = 1;
  // "no", "bf16" or "fp16": the networks' forward under autocast (trainer/step.cpp), float32
  // master weights. Needs a CUDA device (libtorch 1.13's CPU autocast fails in layer_norm).
  std::string mixed_precision = "no";
  // Dynamic loss scaling (trainer/loss_scaler.h): "auto" (TrainConfig::loss_scaling), "dynamic"
  // (always, e.g. to test it in float32, where it is exact), "none".
  std::string loss_scale = "auto";
  double initial_loss_scale = 65536.0;  // a power of two
  int loss_scale_growth_interval = 2000;
  // The frozen weights (reference net, the denoising UNet's frozen layers, the VAE) stored
  // in "bf16" / "fp16" instead of "fp32" under mixed precision on a GPU: half their memory
  // (3.4 GB of SD1.5-size Hallo), as DeepSpeed's fp16 model copy. Model folders keep fp32.
  std::string frozen_dtype = "fp32";
  bool gradient_checkpointing = true;
  // With checkpointing: blocks whose units keep their activations anyway ("up_blocks.1");
  // faster, more memory (trainer/README.md, "Speed and memory"). Upstream: none.
  std::vector<std::string> checkpoint_keep_blocks;
  int max_train_steps = 30000;
  double max_grad_norm = 1.0;  // <= 0: no clipping (the norm is still logged)
  double learning_rate = 1e-5;
  bool scale_lr = false;
  std::string lr_scheduler = "constant";  // constant | constant_with_warmup | linear | cosine
  int lr_warmup_steps = 1;
  double lr_num_cycles = 0.5;  // cosine
  double adam_beta1 = 0.9, adam_beta2 = 0.999;
  double adam_weight_decay = 1e-2;
  double adam_epsilon = 1e-8;
  // Non-finite loss or gradients: the step is skipped; this many in a row abort the run.
  int max_consecutive_nonfinite = 5;
  // Several ranks: 0 = every rank keeps the whole AdamW state; 1 = ZeRO-1, the state
  // split across ranks (trainer/zero.h); 2 = gradients sharded too (upstream's DeepSpeed
  // setting; trainer/dist/c10d_reducer.h).
  int zero_stage = 0;
};

// Upstream behaviours that change the numbers. `upstream_compat: true` sets every
// one to upstream's value (the one-step goldens run that way); the shipped configs
// fix the ones that are bugs and keep the ones that released checkpoints depend on.
struct QuirkConfig {
  // Stage 2's loss averages the MSE over the batch before the min-SNR weighting.
  bool average_mse_before_snr_weighting = false;
  // Reentrant gradient checkpointing: with the audio dropped (zeros, no grad) no input
  // of the down blocks' checkpointed units needs grad, so the whole down path (audio
  // and motion modules of down_blocks.0-2) gets no gradient that step.
  bool reentrant_checkpoint_grads = false;
  // The motion modules of DownBlock3D / UpBlock3D (down_blocks.3, up_blocks.0) never
  // run (they are trained by nobody and skipped at inference). Kept: released
  // checkpoints were trained and are evaluated without them.
  bool skip_motion_in_plain_blocks = true;
  // With the image condition dropped, 4 zero motion frames (not n_motion_frames).
  bool four_zero_motion_frames = false;
  // Frame rows read reference (row % B) instead of their own sample's: in a batch,
  // samples are conditioned on each other's reference images.
  bool tile_reference_rows = false;
  // The reference net's frames [ref, motion...] of sample b get the face tokens of
  // sample (row % B) (encoder_hidden_states.repeat) instead of their own.
  bool tile_reference_context = false;
  // The reference bank passes through float16 (also at inference). Kept.
  bool bank_float16 = true;

  static QuirkConfig upstream();
};

struct ValidationConfig {
  int validation_steps = 1000;  // 0: never
  // Held-out clip: shard directory (default: the first training shard dir) and clip
  // index or id in it (default: the last clip, which the samplers never pick when the
  // validation dir is a training dir... see trainer/validation.h).
  std::string shards;
  std::string clip;
  int inference_steps = 40;  // upstream key at top level, kept there too
  // Loss on a fixed held-out batch with fixed noise every this many steps (0: never),
  // logged as heldout_loss: a learning curve without the noise of the training loss.
  int loss_steps = 100;
  double cfg_scale = 3.5;
  // Early stop (fine-tuning): after this many held-out evaluations in a row without a
  // loss below the best minus early_stop_min_delta, the run stops and final/ holds the
  // weights of the best evaluation (0: never stop early).
  int early_stop_patience = 0;
  double early_stop_min_delta = 0.0;
};

// Network shapes for random initialisation (tiny configs, tests) and overrides of
// what the weight folders say. Every object is optional.
struct ModelConfig {
  nlohmann::json unet;          // diffusers UNet2DConditionModel config (replaces base_model_path/unet/config.json)
  nlohmann::json vae;           // AutoencoderKL config (replaces vae_model_path/config.json)
  nlohmann::json face_locator;  // FaceLocator config fields
  nlohmann::json audioproj;     // AudioProjModel fields (blocks/channels come from the shards)
  uint64_t init_seed = 0;       // seed of fresh initialisations (0: `seed`)
};

// `stage: vae` fits the VAE alone (reconstruction + KL on the shards' frames, trainer/vae_trainer.h):
// the demo's tiny VAE. Real runs use the frozen SD VAE and never need it.
inline constexpr int kStageVae = 0;

struct TrainConfig {
  int stage = 2;  // 1, 2 or kStageVae
  std::string exp_name = "stage2";
  std::string output_dir = "./exp_output";
  DataConfig data;
  SolverConfig solver;
  ValidationConfig val;
  ModelConfig model;
  QuirkConfig quirks;
  bool upstream_compat = false;

  nlohmann::json noise_scheduler_kwargs;  // upstream's keys, as given
  bool enable_zero_snr = true;
  double uncond_ratio = 0.1;        // stage 1: zero face embedding AND skip the reference net
  double uncond_img_ratio = 0.05;   // stage 2: skip the reference net
  double uncond_audio_ratio = 0.05; // stage 2: zero audio tokens
  double start_ratio = 0.05;        // stage 2: zero motion-frame pixels
  double noise_offset = 0.05;
  double snr_gamma = 5.0;
  uint64_t seed = 42;
  int checkpointing_steps = 500;
  int checkpoints_total_limit = 30;
  std::string resume_from_checkpoint;  // upstream "latest": we resume only when asked (--resume)

  // Weights. Stage 1: base_model_path (SD1.5 folder) for both UNets. Stage 2:
  // stage1_ckpt_dir (a stage-1 model folder or upstream's four .pth files) + mm_path
  // (AnimateDiff). net_path (a whole net.pth / model folder) overrides both. Nothing
  // given: seeded random init from `model`.
  std::string base_model_path, vae_model_path, mm_path, stage1_ckpt_dir, net_path;
  nlohmann::json unet_additional_kwargs;  // stage 2 UNet3D kwargs (upstream key)
  std::vector<std::string> trainable_para{"audio_modules", "motion_modules"};  // stage 2
  // Identity fine-tuning: regexes over net.pth names that replace the stage's trainable
  // set when given (configs/train/personalize.yaml); each must match something.
  std::vector<std::string> trainable_patterns;
  losses::VaeLossConfig vae_loss;  // stage vae
  EmaConfig ema;                   // EMA of the trainable weights (trainer/ema.h), any stage
  // LoRA adapters (model/nn/lora.h) added to the loaded net; with them, only the adapters
  // train (plus whatever trainable_patterns names) and the base weights stay frozen.
  nn::LoraConfig lora;

  // The regexes TrainableSet::select gets: trainable_patterns, plus the adapters when
  // lora is on (empty: the stage's own rule).
  std::vector<std::string> trainable_selection() const;

  // The noise schedule training uses: upstream's get_noise_scheduler (zero-SNR,
  // trailing, v-prediction, and beta_schedule forced to scaled_linear).
  sched::SchedulerConfig train_scheduler() const;
  // The DDIM scheduler validation renders with: the same kwargs without the forced
  // scaled_linear (upstream's val_noise_scheduler).
  sched::SchedulerConfig validation_scheduler() const;
  double effective_learning_rate(int world_size = 1) const;
  // Quirks as they apply to this stage (stage-2-only ones are off in stage 1).
  QuirkConfig effective_quirks() const;
  // Whether backward runs on a scaled loss: solver.loss_scale "dynamic", or "auto" with fp16,
  // or with bf16 in stage 1 while the reference bank passes through float16
  // (quirks.bank_float16): its gradients cross fp16 there and would underflow unscaled.
  bool loss_scaling() const;
  // The LossScaler settings this config implies (disabled unless loss_scaling()).
  LossScaleConfig loss_scale_config() const;

  static TrainConfig stage1();       // upstream configs/train/stage1.yaml values
  static TrainConfig stage2();       // upstream configs/train/stage2.yaml values
  static TrainConfig vae();          // stage: vae (project preset)
  // `j` is read over the preset of its `stage` (1, 2 or "vae"; default 2). `where` names the file.
  static TrainConfig from_json(const nlohmann::json& j, const std::string& where);
  // Loads a YAML/JSON file, applies `overrides` ("solver.learning_rate=2e-5", value
  // parsed as YAML) and reads it. Warnings (ignored upstream keys) go to spdlog.
  static TrainConfig load(const std::filesystem::path& path, const std::vector<std::string>& overrides = {});
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;
};

// Applies "a.b.c=value" to a JSON tree (value parsed as a YAML scalar or flow node).
void apply_override(nlohmann::json& tree, const std::string& assignment, const std::string& where);

}  // namespace hallo::trainer
