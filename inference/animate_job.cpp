#include "inference/animate_job.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>

#include "core/device.h"
#include "core/error.h"
#include "model/nn/autocast.h"
#include "data/face/embedding.h"
#include "data/face/landmarks.h"
#include "data/prepare/prepare_config.h"
#include "inference/animator.h"
#include "inference/reference.h"
#include "media/audio_reader.h"
#include "media/video_writer.h"
#include "model/audio/audio_features.h"

namespace hallo::inference {

namespace fs = std::filesystem;

std::vector<AnimateJob> read_job_list(const fs::path& jsonl) {
  std::ifstream in(jsonl);
  if (!in) fail_at(jsonl.string(), "cannot open the job list");
  const fs::path base = jsonl.parent_path();
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() ? fs::path(p) : base / p; };
  std::vector<AnimateJob> jobs;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", jsonl.string(), n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      fail_at(where, "not a JSON object: {}", e.what());
    }
    for (const char* k : {"ref", "audio", "out"})
      if (!j.contains(k) || !j[k].is_string()) fail_at(where, "missing string field '{}'", k);
    for (const auto& [k, v] : j.items())
      if (k != "ref" && k != "audio" && k != "out" && k != "seed") fail_at(where, "unknown field '{}'", k);
    AnimateJob job{resolve(j["ref"]), resolve(j["audio"]), resolve(j["out"]), std::nullopt, 0};
    if (j.contains("seed")) job.seed = j["seed"].get<uint64_t>();
    jobs.push_back(job);
  }
  if (jobs.empty()) fail_at(jsonl.string(), "the job list is empty");
  return jobs;
}

struct AnimateSession::Impl {
  LoadedModel model;
  AnimateConfig cfg;
  std::unique_ptr<audio::AudioPipeline> audio;
  std::unique_ptr<face::FaceAnalyzer> analyzer;
  std::unique_ptr<face::FaceEmbedder> embedder;
  face::ReferenceCropOptions crop;
  int frames = 0, motion = 0;
};

AnimateSession::AnimateSession(LoadedModel model, AnimateConfig cfg, std::string arcface_onnx)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.model = std::move(model);
  s.cfg = std::move(cfg);
  // Geometry: the config's values, else the model's training values.
  auto& c = s.cfg;
  if (c.width == 0) c.width = s.model.width > 0 ? s.model.width : 512;
  if (c.height == 0) c.height = s.model.height > 0 ? s.model.height : 512;
  s.frames = c.n_sample_frames > 0 ? c.n_sample_frames : s.model.frames > 0 ? s.model.frames : 16;
  s.motion = c.n_motion_frames > 0 ? c.n_motion_frames : s.model.motion_frames > 0 ? s.model.motion_frames : 2;
  c.validate("animate settings");
  if (s.model.fps > 0 && std::abs(s.model.fps - c.fps) > 1e-9)
    spdlog::warn("animating at {} fps, but the model was trained at {} fps", c.fps, s.model.fps);

  // Face: the training data's crop, masks and detector settings (read by prepare's own
  // config parser, defaults where absent); the inference config's expand ratio.
  const nlohmann::json& p = s.model.prepare;
  const data::PrepareConfig prep = data::PrepareConfig::from_json(
      p.is_object() ? p : nlohmann::json{{"crop_scale", c.crop_scale}}, s.model.source + ": model.json data.prepare");
  s.crop.width = c.width;
  s.crop.height = c.height;
  s.crop.crop_scale = p.is_object() && p.contains("crop_scale") ? prep.crop_scale : static_cast<float>(c.crop_scale);
  s.crop.masks = prep.masks;
  if (arcface_onnx.empty()) arcface_onnx = prep.arcface_onnx;
  const face::FaceAnalyzerConfig fa = prep.face;
  s.crop.masks.box_expand = static_cast<float>(c.face_expand_ratio);
  s.analyzer = std::make_unique<face::FaceAnalyzer>(fa);
  if (!arcface_onnx.empty()) s.embedder = std::make_unique<face::FaceEmbedder>(arcface_onnx);
  else spdlog::warn("no ArcFace model configured: the face embedding is zeros (as the model's training data was)");

  audio::AudioPipelineConfig ac = s.model.audio;
  ac.features.fps = c.fps;
  ac.features.clip_length = 0;  // the animator pads to whole clips
  s.audio = std::make_unique<audio::AudioPipeline>(ac);

  const auto dev = resolve_device(c.device, 0, "--device");  // a clear error where this build cannot run it
  const c10::ScalarType dtype = nn::mixed_precision_dtype(c.weight_dtype.c_str());
  s.model.net->to(dev, dtype);
  s.model.vae->to(dev, dtype);
  spdlog::info("animate: model {} | {}x{}, {} frames per clip, {} motion frames, {} steps, {}", s.model.source, c.width,
               c.height, s.frames, s.motion, c.inference_steps,
               c.audio_cfg_scale >= 0 ? fmt::format("audio CFG {} / image CFG {}", c.audio_cfg_scale, c.image_cfg_scale)
                                      : fmt::format("CFG {}", c.cfg_scale));
}

AnimateSession::~AnimateSession() = default;

const AnimateConfig& AnimateSession::config() const { return impl_->cfg; }

AnimateResult AnimateSession::run(const AnimateJob& job) {
  auto& s = *impl_;
  const auto& c = s.cfg;
  const auto t0 = std::chrono::steady_clock::now();
  if (job.out.empty()) fail("animate: no output path (--out)");
  if (fs::is_directory(job.out)) fail_at(job.out.string(), "is a directory; --out names the mp4 to write");

  // Reference portrait.
  const cv::Mat rgb = read_rgb_image(job.ref);
  const face::ReferenceCrop crop = face::crop_reference(rgb, *s.analyzer, s.embedder.get(), s.crop);
  if (!crop.face_found) spdlog::warn("{}: no face found; animating the whole image", job.ref.string());
  const int64_t emb_dim = s.model.net->imageproj->config().clip_embeddings_dim;
  ReferenceTensors ref = reference_tensors(crop, emb_dim);

  // Speech: the same feature path as `hallo prepare`.
  if (!fs::exists(job.audio)) fail_at(job.audio.string(), "no such audio file (--audio)");
  const std::vector<float> wave = s.audio->load_speech(job.audio);
  if (wave.empty()) fail_at(job.audio.string(), "the audio decodes to zero samples");
  float peak = 0;
  for (float v : wave) peak = std::max(peak, std::abs(v));
  if (peak < 1e-4f) fail_at(job.audio.string(), "the audio is silent (peak {:.1e}); nothing to animate", peak);
  const audio::AudioFeatures feats = s.audio->extractor().extract(wave);
  const auto& pc = s.model.net->audioproj;
  if (!pc) fail_at(s.model.source, "the net has no audio projection (a stage-1 model): it cannot follow audio");
  const auto& apc = pc->config();
  const int radius = s.audio->config().features.window_radius;
  if (feats.emb.size(1) != apc.blocks || feats.emb.size(2) != apc.channels || 2 * radius + 1 != apc.seq_len)
    fail_at(s.model.source, "audio features are {} layers x {} x window {}, but the net's audioproj expects {} x {} x {}",
            feats.emb.size(1), feats.emb.size(2), 2 * radius + 1, apc.blocks, apc.channels, apc.seq_len);

  AnimateSettings as;
  as.frames_per_clip = s.frames;
  as.motion_frames = s.motion;
  as.clip.num_inference_steps = c.inference_steps;
  as.clip.guidance_scale = c.cfg_scale;
  as.clip.audio_guidance_scale = c.audio_cfg_scale;
  as.clip.image_guidance_scale = c.image_cfg_scale;
  as.clip.motion_noise_timestep = c.motion_noise_timestep;
  as.pose_weight = c.pose_weight;
  as.face_weight = c.face_weight;
  as.lip_weight = c.lip_weight;
  as.seed = job.seed.value_or(c.seed);
  as.dtype = nn::mixed_precision_dtype(c.weight_dtype.c_str());
  as.device = resolve_device(c.device, 0, "--device");
  Animator animator(s.model.net, s.model.vae, c.scheduler(), as);

  AnimateInputs in;
  in.reference = ref.image;
  in.face_emb = ref.face_emb;
  in.face_region = ref.face_region;
  in.masks = ref.masks;
  in.audio_windows = audio::audio_windows(feats.emb, radius);
  in.frames = feats.audio_frames;
  if (job.shuffle_audio_blocks > 0) {
    in.audio_windows = shuffle_audio_blocks(in.audio_windows, in.frames, job.shuffle_audio_blocks, as.seed);
    spdlog::info("control: audio features shuffled in blocks of {} frames (the mp4 keeps the original audio)",
                 job.shuffle_audio_blocks);
  }
  AnimateResult r;
  r.face_found = crop.face_found;
  r.audio_seconds = static_cast<double>(wave.size()) / s.audio->config().features.sample_rate;
  r.clips = clip_count(in.frames, s.frames);
  spdlog::info("{}: {:.2f} s of audio -> {} frames in {} clip(s)", job.audio.string(), r.audio_seconds, in.frames, r.clips);
  const at::Tensor frames = animator.render(in, [&](const ClipProgress& p) {
    spdlog::debug("clip {}/{}", p.clip + 1, p.clips);
  });  // [T, 3, H, W] in [0, 1]

  // mp4: H.264 frames and the original audio (muxed, trimmed/padded to the video).
  if (!job.out.parent_path().empty()) fs::create_directories(job.out.parent_path());
  media::EncodeOptions eo;
  eo.fps = c.fps;
  media::VideoWriter w(job.out, c.width, c.height, eo);
  const at::Tensor bytes = (frames.permute({0, 2, 3, 1}) * 255.0).round().clamp(0, 255).to(at::kByte).contiguous();
  for (int64_t f = 0; f < bytes.size(0); ++f) w.write_rgb(bytes[f].data_ptr<uint8_t>());
  media::AudioDecodeOptions ao;
  ao.sample_rate = 0;  // the source rate
  const auto original = media::decode_audio(job.audio, ao);
  w.set_audio(original.samples, original.sample_rate);
  w.close();
  r.video = job.out;
  r.frames = frames.size(0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace hallo::inference
