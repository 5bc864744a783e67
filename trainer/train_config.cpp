#include "trainer/train_config.h"

#include <spdlog/spdlog.h>

#include <regex>
#include <set>

#include "core/config_file.h"
#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::trainer {

namespace {

using io::JsonFields;

// Upstream keys that are read but deliberately not implemented: one warning each.
struct Ignored {
  const char* key;
  const char* why;
};

void warn_ignored(const JsonFields& f, const std::string& prefix, std::initializer_list<Ignored> keys) {
  for (const auto& k : keys)
    if (f.raw().contains(k.key)) spdlog::warn("{}: '{}{}' is ignored: {}", f.where(), prefix, k.key, k.why);
}

void reject_unknown(const JsonFields& f, const std::string& prefix, const std::set<std::string>& known) {
  for (const auto& k : f.unknown_keys(known)) fail_at(f.where(), "unknown key '{}{}'", prefix, k);
}

nlohmann::json object_or_null(const JsonFields& f, const char* key, const nlohmann::json& fallback) {
  if (!f.has(key)) return fallback;
  const auto& v = f.raw().at(key);
  if (!v.is_object()) fail_at(f.where(), "'{}' must be a mapping", key);
  return v;
}

const char* const kXformersWhy = "xformers is CUDA-only; the project's attention kernel is used (same math)";

}  // namespace

QuirkConfig QuirkConfig::upstream() {
  QuirkConfig q;
  q.average_mse_before_snr_weighting = true;
  q.reentrant_checkpoint_grads = true;
  q.skip_motion_in_plain_blocks = true;
  q.four_zero_motion_frames = true;
  q.tile_reference_rows = true;
  q.tile_reference_context = true;
  q.bank_float16 = true;
  return q;
}

TrainConfig TrainConfig::stage1() {
  TrainConfig c;
  c.stage = 1;
  c.exp_name = "stage1";
  c.data.train_bs = 8;
  c.solver.gradient_checkpointing = false;
  c.val.validation_steps = 500;
  c.noise_scheduler_kwargs = {{"num_train_timesteps", 1000}, {"beta_start", 0.00085}, {"beta_end", 0.012},
                              {"beta_schedule", "scaled_linear"}, {"steps_offset", 1}, {"clip_sample", false}};
  return c;
}

TrainConfig TrainConfig::stage2() {
  TrainConfig c;
  c.stage = 2;
  c.exp_name = "stage2";
  c.data.train_bs = 4;
  c.solver.gradient_checkpointing = true;
  c.val.validation_steps = 1000;
  c.noise_scheduler_kwargs = {{"num_train_timesteps", 1000}, {"beta_start", 0.00085}, {"beta_end", 0.012},
                              {"beta_schedule", "linear"}, {"steps_offset", 1}, {"clip_sample", false}};
  c.unet_additional_kwargs = {
      {"use_inflated_groupnorm", true},
      {"unet_use_cross_frame_attention", false},
      {"unet_use_temporal_attention", false},
      {"use_motion_module", true},
      {"use_audio_module", true},
      {"motion_module_resolutions", {1, 2, 4, 8}},
      {"motion_module_mid_block", true},
      {"motion_module_decoder_only", false},
      {"motion_module_type", "Vanilla"},
      {"motion_module_kwargs",
       {{"num_attention_heads", 8},
        {"num_transformer_block", 1},
        {"attention_block_types", {"Temporal_Self", "Temporal_Self"}},
        {"temporal_position_encoding", true},
        {"temporal_position_encoding_max_len", 32},
        {"temporal_attention_dim_div", 1}}},
      {"audio_attention_dim", 768},
      {"stack_enable_blocks_name", {"up", "down", "mid"}},
      {"stack_enable_blocks_depth", {0, 1, 2, 3}}};
  return c;
}

TrainConfig TrainConfig::vae() {
  TrainConfig c = stage1();
  c.stage = kStageVae;
  c.exp_name = "vae";
  c.data.sample_margin = 0;  // the reference frame is just another training image
  c.solver.learning_rate = 1e-4;
  c.solver.max_train_steps = 2000;
  c.val.validation_steps = 0;
  return c;
}

sched::SchedulerConfig TrainConfig::train_scheduler() const {
  nlohmann::json k = noise_scheduler_kwargs.is_object() ? noise_scheduler_kwargs : nlohmann::json::object();
  if (enable_zero_snr) {
    k["rescale_betas_zero_snr"] = true;
    k["timestep_spacing"] = "trailing";
    k["prediction_type"] = "v_prediction";
  }
  // Upstream's get_noise_scheduler: the training scheduler is always scaled_linear
  // (the stage-2 yaml's "linear" only reaches the validation scheduler).
  k["beta_schedule"] = "scaled_linear";
  return sched::SchedulerConfig::from_json(k, "noise_scheduler_kwargs");
}

sched::SchedulerConfig TrainConfig::validation_scheduler() const {
  nlohmann::json k = noise_scheduler_kwargs.is_object() ? noise_scheduler_kwargs : nlohmann::json::object();
  if (enable_zero_snr) {
    k["rescale_betas_zero_snr"] = true;
    k["timestep_spacing"] = "trailing";
    k["prediction_type"] = "v_prediction";
  }
  return sched::SchedulerConfig::from_json(k, "noise_scheduler_kwargs");
}

double TrainConfig::effective_learning_rate(int world_size) const {
  if (!solver.scale_lr) return solver.learning_rate;
  return solver.learning_rate * solver.gradient_accumulation_steps * data.train_bs * world_size;
}

bool TrainConfig::loss_scaling() const {
  if (solver.loss_scale != "auto") return solver.loss_scale == "dynamic";
  if (solver.mixed_precision == "fp16") return true;
  return solver.mixed_precision == "bf16" && stage == 1 && effective_quirks().bank_float16;
}

LossScaleConfig TrainConfig::loss_scale_config() const {
  LossScaleConfig c;
  c.enabled = loss_scaling();
  c.init_scale = solver.initial_loss_scale;
  c.growth_interval = solver.loss_scale_growth_interval;
  return c;
}

QuirkConfig TrainConfig::effective_quirks() const {
  QuirkConfig q = quirks;
  if (stage == 1) {
    // Stage 1 weights each sample (upstream too) and has no motion modules.
    q.average_mse_before_snr_weighting = false;
    q.four_zero_motion_frames = false;
  }
  return q;
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "a training config must be a mapping");
  JsonFields f(j, where);
  int stage = 2;
  if (f.has("stage")) {
    const auto& sv = j.at("stage");
    if (sv.is_string() && sv.get<std::string>() == "vae") stage = kStageVae;
    else if (sv.is_number_integer() && (sv.get<int>() == 1 || sv.get<int>() == 2)) stage = sv.get<int>();
    else fail_at(where, "'stage' must be 1, 2 or vae, got {}", sv.dump());
  }
  TrainConfig c = stage == 1 ? stage1() : stage == 2 ? stage2() : vae();

  reject_unknown(f, "", {"stage", "exp_name", "output_dir", "data", "solver", "val", "model", "quirks",
                         "upstream_compat", "noise_scheduler_kwargs", "enable_zero_snr", "uncond_ratio",
                         "uncond_img_ratio", "uncond_audio_ratio", "uncond_ia_ratio", "start_ratio", "noise_offset",
                         "snr_gamma", "seed", "checkpointing_steps", "checkpoints_total_limit",
                         "resume_from_checkpoint", "base_model_path", "vae_model_path", "mm_path", "stage1_ckpt_dir",
                         "net_path", "unet_additional_kwargs", "trainable_para", "weight_dtype",
                         "face_analysis_model_path", "face_locator_pretrained", "ref_image_paths", "mask_image_paths",
                         "ref_img_path", "audio_path", "wav2vec_config", "audio_separator", "face_expand_ratio",
                         "single_inference_times", "inference_steps", "cfg_scale", "vae_loss", "ema",
                         "trainable_patterns", "init", "lora"});
  warn_ignored(f, "", {
      {"uncond_ia_ratio", "upstream never reads it (stage 2 drops image and audio independently)"},
      {"face_analysis_model_path", "training reads face embeddings and masks from the shards (hallo prepare)"},
      {"wav2vec_config", "training reads audio features from the shards (hallo prepare --wav2vec2)"},
      {"audio_separator", "vocal separation happens in hallo prepare"},
      {"face_expand_ratio", "inference setting (hallo animate)"},
      {"ref_image_paths", "validation renders a held-out shard clip (val.shards / val.clip)"},
      {"mask_image_paths", "validation renders a held-out shard clip (val.shards / val.clip)"},
      {"ref_img_path", "validation renders a held-out shard clip (val.shards / val.clip)"},
      {"audio_path", "validation renders a held-out shard clip (val.shards / val.clip)"},
      {"single_inference_times", "validation renders one clip"},
  });
  if (f.has("face_locator_pretrained") && f.get<bool>("face_locator_pretrained"))
    fail_at(where, "face_locator_pretrained: true is not supported (upstream's path loads an unpublished "
                   "checkpoint with strict=False); give a whole net with net_path instead");
  if (f.has("weight_dtype")) {
    const auto wd = f.get<std::string>("weight_dtype");
    if (wd != "fp32")
      spdlog::warn("{}: 'weight_dtype: {}' is ignored: trainable weights and optimizer state stay float32 "
                   "(upstream's pure-{} weights with mixed_precision 'no' lose small updates)",
                   where, wd, wd);
  }

  c.stage = stage;
  c.exp_name = f.get_or<std::string>("exp_name", c.exp_name);
  c.output_dir = f.get_or<std::string>("output_dir", c.output_dir);
  c.upstream_compat = f.get_or<bool>("upstream_compat", false);
  if (c.upstream_compat) c.quirks = QuirkConfig::upstream();
  if (f.has("noise_scheduler_kwargs")) c.noise_scheduler_kwargs = object_or_null(f, "noise_scheduler_kwargs", {});
  for (const auto& k : sched::SchedulerConfig::unknown_keys(c.noise_scheduler_kwargs, where + ": noise_scheduler_kwargs"))
    fail_at(where, "unknown key 'noise_scheduler_kwargs.{}'", k);
  c.enable_zero_snr = f.get_or<bool>("enable_zero_snr", c.enable_zero_snr);
  c.uncond_ratio = f.get_or<double>("uncond_ratio", c.uncond_ratio);
  c.uncond_img_ratio = f.get_or<double>("uncond_img_ratio", c.uncond_img_ratio);
  c.uncond_audio_ratio = f.get_or<double>("uncond_audio_ratio", c.uncond_audio_ratio);
  c.start_ratio = f.get_or<double>("start_ratio", c.start_ratio);
  c.noise_offset = f.get_or<double>("noise_offset", c.noise_offset);
  c.snr_gamma = f.get_or<double>("snr_gamma", c.snr_gamma);
  c.seed = static_cast<uint64_t>(f.get_or<int64_t>("seed", static_cast<int64_t>(c.seed)));
  c.checkpointing_steps = f.get_or<int>("checkpointing_steps", c.checkpointing_steps);
  c.checkpoints_total_limit = f.get_or<int>("checkpoints_total_limit", c.checkpoints_total_limit);
  c.resume_from_checkpoint = f.get_or<std::string>("resume_from_checkpoint", c.resume_from_checkpoint);
  c.base_model_path = f.get_or<std::string>("base_model_path", c.base_model_path);
  c.vae_model_path = f.get_or<std::string>("vae_model_path", c.vae_model_path);
  c.mm_path = f.get_or<std::string>("mm_path", c.mm_path);
  c.stage1_ckpt_dir = f.get_or<std::string>("stage1_ckpt_dir", c.stage1_ckpt_dir);
  c.net_path = f.get_or<std::string>("net_path", c.net_path);
  if (f.has("unet_additional_kwargs")) c.unet_additional_kwargs = object_or_null(f, "unet_additional_kwargs", {});
  c.trainable_para = f.get_or<std::vector<std::string>>("trainable_para", c.trainable_para);
  c.trainable_patterns = f.get_or<std::vector<std::string>>("trainable_patterns", c.trainable_patterns);
  if (f.has("lora")) c.lora = nn::LoraConfig::from_json(j.at("lora"), where);
  if (f.has("init")) {
    // `init.net`: the whole trained net a fine-tuning run starts from (the same as net_path).
    JsonFields g = f.object("init");
    reject_unknown(g, "init.", {"net"});
    const std::string net = g.get_or<std::string>("net", "");
    if (!net.empty()) {
      if (!c.net_path.empty() && c.net_path != net) fail_at(where, "init.net and net_path name different nets");
      c.net_path = net;
    }
  }
  c.val.inference_steps = f.get_or<int>("inference_steps", c.val.inference_steps);
  c.val.cfg_scale = f.get_or<double>("cfg_scale", c.val.cfg_scale);

  if (f.has("data")) {
    JsonFields g = f.object("data");
    reject_unknown(g, "data.", {"shards", "train_bs", "val_bs", "train_width", "train_height", "fps", "sample_rate",
                                "n_motion_frames", "n_sample_frames", "audio_margin", "sample_margin", "latents",
                                "max_bad_clip_fraction", "train_meta_paths", "meta_paths"});
    for (const char* k : {"train_meta_paths", "meta_paths"})
      if (g.has(k))
        fail_at(where, "'data.{}' lists upstream meta JSON files; give the shard directories `hallo prepare` "
                       "wrote as 'data.shards' instead",
                k);
    warn_ignored(g, "data.", {{"val_bs", "validation renders one clip"}});
    auto& d = c.data;
    d.shards = g.get_or<std::vector<std::string>>("shards", d.shards);
    d.train_bs = g.get_or<int>("train_bs", d.train_bs);
    d.train_width = g.get_or<int>("train_width", d.train_width);
    d.train_height = g.get_or<int>("train_height", d.train_height);
    d.fps = g.get_or<int>("fps", d.fps);
    d.sample_rate = g.get_or<int>("sample_rate", d.sample_rate);
    d.n_motion_frames = g.get_or<int>("n_motion_frames", d.n_motion_frames);
    d.n_sample_frames = g.get_or<int>("n_sample_frames", d.n_sample_frames);
    d.audio_margin = g.get_or<int>("audio_margin", d.audio_margin);
    d.sample_margin = g.get_or<int>("sample_margin", d.sample_margin);
    d.latents = g.get_or<std::string>("latents", d.latents);
    d.max_bad_clip_fraction = g.get_or<double>("max_bad_clip_fraction", d.max_bad_clip_fraction);
  }
  if (f.has("solver")) {
    JsonFields g = f.object("solver");
    reject_unknown(g, "solver.", {"gradient_accumulation_steps", "mixed_precision", "gradient_checkpointing",
                                  "checkpoint_keep_blocks", "max_train_steps", "max_grad_norm", "learning_rate", "scale_lr", "lr_scheduler",
                                  "lr_warmup_steps", "lr_num_cycles", "use_8bit_adam", "adam_beta1", "adam_beta2",
                                  "adam_weight_decay", "adam_epsilon", "enable_xformers_memory_efficient_attention",
                                  "max_consecutive_nonfinite", "zero_stage", "loss_scale", "initial_loss_scale",
                                  "loss_scale_growth_interval", "frozen_dtype"});
    if (g.has("use_8bit_adam") && g.get<bool>("use_8bit_adam"))
      spdlog::warn("{}: 'solver.use_8bit_adam' is ignored: bitsandbytes' AdamW8bit is CUDA-only and not "
                   "reproducible; standard AdamW (float32 state) is used",
                   where);
    if (g.has("enable_xformers_memory_efficient_attention") && g.get<bool>("enable_xformers_memory_efficient_attention"))
      spdlog::warn("{}: 'solver.enable_xformers_memory_efficient_attention' is ignored: {}", where, kXformersWhy);
    auto& s = c.solver;
    s.gradient_accumulation_steps = g.get_or<int>("gradient_accumulation_steps", s.gradient_accumulation_steps);
    s.mixed_precision = g.get_or<std::string>("mixed_precision", s.mixed_precision);
    s.gradient_checkpointing = g.get_or<bool>("gradient_checkpointing", s.gradient_checkpointing);
    s.checkpoint_keep_blocks = g.get_or<std::vector<std::string>>("checkpoint_keep_blocks", s.checkpoint_keep_blocks);
    for (const auto& b : s.checkpoint_keep_blocks)
      if (!std::regex_match(b, std::regex("(down|up)_blocks\\.[0-9]+")))
        fail_at(where, "solver.checkpoint_keep_blocks: '{}' is not a block of the UNet (down_blocks.N or up_blocks.N)",
                b);
    s.max_train_steps = g.get_or<int>("max_train_steps", s.max_train_steps);
    s.max_grad_norm = g.get_or<double>("max_grad_norm", s.max_grad_norm);
    s.learning_rate = g.get_or<double>("learning_rate", s.learning_rate);
    s.scale_lr = g.get_or<bool>("scale_lr", s.scale_lr);
    s.lr_scheduler = g.get_or<std::string>("lr_scheduler", s.lr_scheduler);
    s.lr_warmup_steps = g.get_or<int>("lr_warmup_steps", s.lr_warmup_steps);
    s.lr_num_cycles = g.get_or<double>("lr_num_cycles", s.lr_num_cycles);
    s.adam_beta1 = g.get_or<double>("adam_beta1", s.adam_beta1);
    s.adam_beta2 = g.get_or<double>("adam_beta2", s.adam_beta2);
    s.adam_weight_decay = g.get_or<double>("adam_weight_decay", s.adam_weight_decay);
    s.adam_epsilon = g.get_or<double>("adam_epsilon", s.adam_epsilon);
    s.max_consecutive_nonfinite = g.get_or<int>("max_consecutive_nonfinite", s.max_consecutive_nonfinite);
    s.zero_stage = g.get_or<int>("zero_stage", s.zero_stage);
    s.loss_scale = g.get_or<std::string>("loss_scale", s.loss_scale);
    s.initial_loss_scale = g.get_or<double>("initial_loss_scale", s.initial_loss_scale);
    s.loss_scale_growth_interval = g.get_or<int>("loss_scale_growth_interval", s.loss_scale_growth_interval);
    s.frozen_dtype = g.get_or<std::string>("frozen_dtype", s.frozen_dtype);
  }
  if (f.has("val")) {
    JsonFields g = f.object("val");
    reject_unknown(g, "val.", {"validation_steps", "shards", "clip", "inference_steps", "cfg_scale", "loss_steps",
                               "early_stop_patience", "early_stop_min_delta"});
    auto& v = c.val;
    v.validation_steps = g.get_or<int>("validation_steps", v.validation_steps);
    v.shards = g.get_or<std::string>("shards", v.shards);
    if (g.has("clip")) {
      const auto& cv = g.raw().at("clip");
      v.clip = cv.is_number_integer() ? std::to_string(cv.get<int64_t>()) : g.get<std::string>("clip");
    }
    v.inference_steps = g.get_or<int>("inference_steps", v.inference_steps);
    v.cfg_scale = g.get_or<double>("cfg_scale", v.cfg_scale);
    v.loss_steps = g.get_or<int>("loss_steps", v.loss_steps);
    v.early_stop_patience = g.get_or<int>("early_stop_patience", v.early_stop_patience);
    v.early_stop_min_delta = g.get_or<double>("early_stop_min_delta", v.early_stop_min_delta);
  }
  if (f.has("model")) {
    JsonFields g = f.object("model");
    reject_unknown(g, "model.", {"unet", "vae", "face_locator", "audioproj", "init_seed"});
    c.model.unet = object_or_null(g, "unet", c.model.unet);
    c.model.vae = object_or_null(g, "vae", c.model.vae);
    c.model.face_locator = object_or_null(g, "face_locator", c.model.face_locator);
    c.model.audioproj = object_or_null(g, "audioproj", c.model.audioproj);
    c.model.init_seed = static_cast<uint64_t>(g.get_or<int64_t>("init_seed", 0));
  }
  if (f.has("vae_loss")) {
    if (stage != kStageVae) fail_at(where, "'vae_loss' applies to 'stage: vae' only");
    JsonFields g = f.object("vae_loss");
    reject_unknown(g, "vae_loss.", {"kl_weight", "face_weight"});
    c.vae_loss.kl_weight = g.get_or<double>("kl_weight", c.vae_loss.kl_weight);
    c.vae_loss.face_weight = g.get_or<double>("face_weight", c.vae_loss.face_weight);
  }
  if (f.has("ema")) {
    JsonFields g = f.object("ema");
    reject_unknown(g, "ema.", {"enabled", "decay", "start_step", "every", "for_validation"});
    auto& e = c.ema;
    e.enabled = g.get_or<bool>("enabled", true);  // an ema: block switches it on unless it says otherwise
    e.decay = g.get_or<double>("decay", e.decay);
    e.start_step = g.get_or<int64_t>("start_step", e.start_step);
    e.every = g.get_or<int>("every", e.every);
    e.for_validation = g.get_or<bool>("for_validation", e.for_validation);
  }
  if (f.has("quirks")) {
    JsonFields g = f.object("quirks");
    reject_unknown(g, "quirks.", {"average_mse_before_snr_weighting", "reentrant_checkpoint_grads",
                                  "skip_motion_in_plain_blocks", "four_zero_motion_frames", "tile_reference_rows",
                                  "tile_reference_context", "bank_float16"});
    auto& q = c.quirks;
    q.average_mse_before_snr_weighting = g.get_or<bool>("average_mse_before_snr_weighting", q.average_mse_before_snr_weighting);
    q.reentrant_checkpoint_grads = g.get_or<bool>("reentrant_checkpoint_grads", q.reentrant_checkpoint_grads);
    q.skip_motion_in_plain_blocks = g.get_or<bool>("skip_motion_in_plain_blocks", q.skip_motion_in_plain_blocks);
    q.four_zero_motion_frames = g.get_or<bool>("four_zero_motion_frames", q.four_zero_motion_frames);
    q.tile_reference_rows = g.get_or<bool>("tile_reference_rows", q.tile_reference_rows);
    q.tile_reference_context = g.get_or<bool>("tile_reference_context", q.tile_reference_context);
    q.bank_float16 = g.get_or<bool>("bank_float16", q.bank_float16);
  }
  c.validate(where);
  return c;
}

void apply_override(nlohmann::json& tree, const std::string& assignment, const std::string& where) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    fail_at(where, "override '{}' is not KEY=VALUE (e.g. solver.learning_rate=2e-5)", assignment);
  const std::string path = assignment.substr(0, eq);
  nlohmann::json value = parse_yaml(assignment.substr(eq + 1), where + ": override '" + assignment + "'");
  nlohmann::json* node = &tree;
  size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) fail_at(where, "override '{}': empty key in '{}'", assignment, path);
    if (!node->is_object()) fail_at(where, "override '{}': '{}' is not a mapping", assignment, path.substr(0, start - 1));
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    node = &(*node)[key];
    if (node->is_null()) *node = nlohmann::json::object();
    start = dot + 1;
  }
}

TrainConfig TrainConfig::load(const std::filesystem::path& path, const std::vector<std::string>& overrides) {
  nlohmann::json j = load_config_file(path);
  if (j.is_null()) j = nlohmann::json::object();
  for (const auto& o : overrides) apply_override(j, o, path.string() + " (--set)");
  return from_json(j, path.string());
}

void TrainConfig::validate(const std::string& where) const {
  const auto& d = data;
  const auto& s = solver;
  auto positive = [&](const char* name, double v) {
    if (!(v > 0)) fail_at(where, "'{}' must be positive, got {}", name, v);
  };
  positive("data.train_bs", d.train_bs);
  positive("data.train_width", d.train_width);
  positive("data.train_height", d.train_height);
  if (d.train_width % 64 != 0 || d.train_height % 64 != 0)
    fail_at(where, "data.train_width/height must be multiples of 64 (four latent mask levels), got {}x{}",
            d.train_width, d.train_height);
  positive("data.n_sample_frames", d.n_sample_frames);
  if (d.n_motion_frames < 0 || d.audio_margin < 0 || d.sample_margin < 0)
    fail_at(where, "data.n_motion_frames, audio_margin and sample_margin must be >= 0");
  if (d.latents != "auto" && d.latents != "shards" && d.latents != "vae")
    fail_at(where, "data.latents must be auto, shards or vae, got '{}'", d.latents);
  if (d.max_bad_clip_fraction < 0 || d.max_bad_clip_fraction > 1)
    fail_at(where, "data.max_bad_clip_fraction must be in [0, 1]");
  positive("solver.gradient_accumulation_steps", s.gradient_accumulation_steps);
  positive("solver.max_train_steps", s.max_train_steps);
  positive("solver.learning_rate", s.learning_rate);
  positive("solver.max_consecutive_nonfinite", s.max_consecutive_nonfinite);
  if (s.zero_stage < 0 || s.zero_stage > 2)
    fail_at(where, "solver.zero_stage must be 0 (none), 1 (sharded AdamW state) or 2 (and sharded gradients), got {}",
            s.zero_stage);
  if (s.mixed_precision != "no" && s.mixed_precision != "bf16" && s.mixed_precision != "fp16")
    fail_at(where, "solver.mixed_precision must be no, bf16 or fp16, got '{}'", s.mixed_precision);
  // Whether the device can run it is the trainer's check (it knows the device).
  if (s.loss_scale != "auto" && s.loss_scale != "dynamic" && s.loss_scale != "none")
    fail_at(where, "solver.loss_scale must be auto (dynamic with fp16), dynamic or none, got '{}'", s.loss_scale);
  if (!is_power_of_two(s.initial_loss_scale))
    fail_at(where, "solver.initial_loss_scale must be a power of two (scaling is then exact), got {}",
            s.initial_loss_scale);
  positive("solver.loss_scale_growth_interval", s.loss_scale_growth_interval);
  if (s.frozen_dtype != "fp32" && s.frozen_dtype != "bf16" && s.frozen_dtype != "fp16")
    fail_at(where, "solver.frozen_dtype must be fp32, bf16 or fp16, got '{}'", s.frozen_dtype);
  if (s.frozen_dtype != "fp32" && s.mixed_precision == "no")
    fail_at(where, "solver.frozen_dtype {} needs solver.mixed_precision bf16 or fp16 (low-precision weights meet "
                   "float32 activations only under autocast)", s.frozen_dtype);
  if (s.lr_scheduler != "constant" && s.lr_scheduler != "constant_with_warmup" && s.lr_scheduler != "linear" &&
      s.lr_scheduler != "cosine")
    fail_at(where, "solver.lr_scheduler must be constant, constant_with_warmup, linear or cosine, got '{}'",
            s.lr_scheduler);
  if (s.lr_warmup_steps < 0) fail_at(where, "solver.lr_warmup_steps must be >= 0");
  if (!(s.adam_beta1 >= 0 && s.adam_beta1 < 1 && s.adam_beta2 >= 0 && s.adam_beta2 < 1))
    fail_at(where, "solver.adam_beta1/adam_beta2 must be in [0, 1)");
  if (s.adam_epsilon < 0 || s.adam_weight_decay < 0) fail_at(where, "solver.adam_epsilon/adam_weight_decay must be >= 0");
  for (const auto& [name, r] : {std::pair<const char*, double>{"uncond_ratio", uncond_ratio},
                                {"uncond_img_ratio", uncond_img_ratio},
                                {"uncond_audio_ratio", uncond_audio_ratio},
                                {"start_ratio", start_ratio}})
    if (r < 0 || r > 1) fail_at(where, "'{}' must be in [0, 1], got {}", name, r);
  if (noise_offset < 0 || snr_gamma < 0) fail_at(where, "noise_offset and snr_gamma must be >= 0");
  if (checkpointing_steps < 0 || checkpoints_total_limit < 1)
    fail_at(where, "checkpointing_steps must be >= 0 and checkpoints_total_limit >= 1");
  if (val.early_stop_patience < 0 || val.early_stop_min_delta < 0)
    fail_at(where, "val.early_stop_patience and val.early_stop_min_delta must be >= 0");
  if (val.early_stop_patience > 0 && val.loss_steps == 0)
    fail_at(where, "val.early_stop_patience needs held-out losses (val.loss_steps > 0)");
  if (val.validation_steps < 0 || val.inference_steps < 1 || val.loss_steps < 0)
    fail_at(where, "val.validation_steps and val.loss_steps must be >= 0, inference_steps >= 1");
  if (stage == kStageVae) {
    if (vae_loss.kl_weight < 0 || vae_loss.face_weight < 0) fail_at(where, "vae_loss.kl_weight and face_weight must be >= 0");
    if (vae_model_path.empty() && (!model.vae.is_object() || model.vae.empty()))
      fail_at(where, "stage vae needs a VAE shape (model.vae) or a VAE to fine-tune (vae_model_path)");
  }
  if (stage == 2 && trainable_para.empty()) fail_at(where, "trainable_para is empty: stage 2 would train nothing");
  if (stage == kStageVae && !trainable_patterns.empty()) fail_at(where, "trainable_patterns applies to stages 1 and 2");
  if (stage == kStageVae && lora.enabled()) fail_at(where, "lora applies to stages 1 and 2");
  if (stage == kStageVae && ema.enabled) fail_at(where, "ema applies to stages 1 and 2 (the VAE stage has no EMA)");
  if (ema.decay < 0 || ema.decay > 1 || ema.every < 1 || ema.start_step < 0)
    fail_at(where, "ema: decay must be in [0, 1], every >= 1, start_step >= 0");
  if (!resume_from_checkpoint.empty() && resume_from_checkpoint != "latest")
    fail_at(where, "resume_from_checkpoint: only 'latest' is read from the config; pass --resume DIR for a folder");
  train_scheduler();  // validates noise_scheduler_kwargs
}

std::vector<std::string> TrainConfig::trainable_selection() const {
  std::vector<std::string> p = trainable_patterns;
  if (lora.enabled()) p.push_back("\\.lora_[AB]\\.weight$");
  return p;
}

nlohmann::json TrainConfig::to_json() const {
  const auto& d = data;
  const auto& s = solver;
  const auto& q = quirks;
  nlohmann::json j;
  if (stage == kStageVae) j["stage"] = "vae";
  else j["stage"] = stage;
  j["exp_name"] = exp_name;
  j["output_dir"] = output_dir;
  j["upstream_compat"] = upstream_compat;
  j["data"] = {{"shards", d.shards},
               {"train_bs", d.train_bs},
               {"train_width", d.train_width},
               {"train_height", d.train_height},
               {"fps", d.fps},
               {"sample_rate", d.sample_rate},
               {"n_sample_frames", d.n_sample_frames},
               {"n_motion_frames", d.n_motion_frames},
               {"audio_margin", d.audio_margin},
               {"sample_margin", d.sample_margin},
               {"latents", d.latents},
               {"max_bad_clip_fraction", d.max_bad_clip_fraction}};
  j["solver"] = {{"gradient_accumulation_steps", s.gradient_accumulation_steps},
                 {"mixed_precision", s.mixed_precision},
                 {"loss_scale", s.loss_scale},
                 {"initial_loss_scale", s.initial_loss_scale},
                 {"loss_scale_growth_interval", s.loss_scale_growth_interval},
                 {"frozen_dtype", s.frozen_dtype},
                 {"gradient_checkpointing", s.gradient_checkpointing},
                 {"checkpoint_keep_blocks", s.checkpoint_keep_blocks},
                 {"max_train_steps", s.max_train_steps},
                 {"max_grad_norm", s.max_grad_norm},
                 {"learning_rate", s.learning_rate},
                 {"scale_lr", s.scale_lr},
                 {"lr_scheduler", s.lr_scheduler},
                 {"lr_warmup_steps", s.lr_warmup_steps},
                 {"lr_num_cycles", s.lr_num_cycles},
                 {"adam_beta1", s.adam_beta1},
                 {"adam_beta2", s.adam_beta2},
                 {"adam_weight_decay", s.adam_weight_decay},
                 {"adam_epsilon", s.adam_epsilon},
                 {"max_consecutive_nonfinite", s.max_consecutive_nonfinite},
                 {"zero_stage", s.zero_stage}};
  j["val"] = {{"validation_steps", val.validation_steps}, {"shards", val.shards}, {"clip", val.clip},
              {"inference_steps", val.inference_steps}, {"cfg_scale", val.cfg_scale}, {"loss_steps", val.loss_steps},
              {"early_stop_patience", val.early_stop_patience}, {"early_stop_min_delta", val.early_stop_min_delta}};
  j["model"] = {{"unet", model.unet}, {"vae", model.vae}, {"face_locator", model.face_locator},
                {"audioproj", model.audioproj}, {"init_seed", model.init_seed}};
  j["quirks"] = {{"average_mse_before_snr_weighting", q.average_mse_before_snr_weighting},
                 {"reentrant_checkpoint_grads", q.reentrant_checkpoint_grads},
                 {"skip_motion_in_plain_blocks", q.skip_motion_in_plain_blocks},
                 {"four_zero_motion_frames", q.four_zero_motion_frames},
                 {"tile_reference_rows", q.tile_reference_rows},
                 {"tile_reference_context", q.tile_reference_context},
                 {"bank_float16", q.bank_float16}};
  if (!trainable_patterns.empty()) j["trainable_patterns"] = trainable_patterns;
  if (lora.enabled()) j["lora"] = lora.to_json();
  j["ema"] = {{"enabled", ema.enabled}, {"decay", ema.decay}, {"start_step", ema.start_step}, {"every", ema.every},
               {"for_validation", ema.for_validation}};
  j["noise_scheduler_kwargs"] = noise_scheduler_kwargs;
  j["enable_zero_snr"] = enable_zero_snr;
  if (stage == kStageVae) {
    j["vae_loss"] = {{"kl_weight", vae_loss.kl_weight}, {"face_weight", vae_loss.face_weight}};
  } else if (stage == 1) {
    j["uncond_ratio"] = uncond_ratio;
  } else {
    j["uncond_img_ratio"] = uncond_img_ratio;
    j["uncond_audio_ratio"] = uncond_audio_ratio;
    j["start_ratio"] = start_ratio;
    j["unet_additional_kwargs"] = unet_additional_kwargs;
    j["trainable_para"] = trainable_para;
  }
  j["noise_offset"] = noise_offset;
  j["snr_gamma"] = snr_gamma;
  j["seed"] = seed;
  j["checkpointing_steps"] = checkpointing_steps;
  j["checkpoints_total_limit"] = checkpoints_total_limit;
  j["base_model_path"] = base_model_path;
  j["vae_model_path"] = vae_model_path;
  j["mm_path"] = mm_path;
  j["stage1_ckpt_dir"] = stage1_ckpt_dir;
  j["net_path"] = net_path;
  return j;
}

}  // namespace hallo::trainer
