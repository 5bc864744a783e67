#include "data/prepare/prepare_config.h"

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::data {

PrepareConfig PrepareConfig::defaults() {
  PrepareConfig c;
  c.audio.features.extractor = "logmel";
  return c;
}

PrepareConfig PrepareConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  for (const auto& k : f.unknown_keys({"fps", "sample_rate", "resolution", "clip_length", "clip_stride", "min_clip_length", "crop_scale",
                                       "analysis_max_side", "arcface_onnx", "vae", "vae_config", "face", "masks",
                                       "clean", "audio", "shards"}))
    fail_at(where, "unknown prepare field '{}'", k);
  PrepareConfig c = defaults();
  c.fps = f.get_or<double>("fps", c.fps);
  c.sample_rate = f.get_or<int>("sample_rate", c.sample_rate);
  c.resolution = f.get_or<int>("resolution", c.resolution);
  c.clip_length = f.get_or<int>("clip_length", c.clip_length);
  c.clip_stride = f.get_or<int>("clip_stride", c.clip_stride);
  c.min_clip_length = f.get_or<int>("min_clip_length", std::min(c.min_clip_length, c.clip_length));
  c.crop_scale = f.get_or<float>("crop_scale", c.crop_scale);
  c.analysis_max_side = f.get_or<int>("analysis_max_side", c.analysis_max_side);
  c.arcface_onnx = f.get_or<std::string>("arcface_onnx", c.arcface_onnx);
  c.vae = f.get_or<std::string>("vae", c.vae);
  c.vae_config = f.get_or<std::string>("vae_config", c.vae_config);
  if (f.has("face")) {
    io::JsonFields g = f.object("face");
    for (const auto& k : g.unknown_keys({"shape_predictor", "onnx_detector", "detect_max_side", "upsample", "detect_every"}))
      fail_at(where, "unknown face field '{}'", k);
    c.face.shape_predictor = g.get_or<std::string>("shape_predictor", c.face.shape_predictor);
    c.face.onnx_detector = g.get_or<std::string>("onnx_detector", c.face.onnx_detector);
    c.face.detect_max_side = g.get_or<int>("detect_max_side", c.face.detect_max_side);
    c.face.upsample = g.get_or<int>("upsample", c.face.upsample);
    c.face.detect_every = g.get_or<int>("detect_every", c.face.detect_every);
  }
  if (f.has("masks")) {
    io::JsonFields g = f.object("masks");
    for (const auto& k : g.unknown_keys({"mask_size_ref", "face_blur", "lip_blur", "box_expand", "lip_expand"}))
      fail_at(where, "unknown masks field '{}'", k);
    c.masks.mask_size_ref = g.get_or<int>("mask_size_ref", c.masks.mask_size_ref);
    c.masks.face_blur = g.get_or<int>("face_blur", c.masks.face_blur);
    c.masks.lip_blur = g.get_or<int>("lip_blur", c.masks.lip_blur);
    c.masks.box_expand = g.get_or<float>("box_expand", c.masks.box_expand);
    c.masks.lip_expand = g.get_or<float>("lip_expand", c.masks.lip_expand);
  }
  // The frame rate and sample rate are stated once at top level and inherited below.
  nlohmann::json clean_j = f.has("clean") ? f.raw().at("clean") : nlohmann::json::object();
  if (!clean_j.contains("fps")) clean_j["fps"] = c.fps;
  c.clean = clean::clean_config_from_json(clean_j, where + ": clean");
  nlohmann::json audio_j = f.has("audio") ? f.raw().at("audio") : nlohmann::json{{"extractor", "logmel"}};
  if (!audio_j.contains("fps")) audio_j["fps"] = c.fps;
  if (!audio_j.contains("sample_rate")) audio_j["sample_rate"] = c.sample_rate;
  c.audio = audio::AudioPipelineConfig::from_json(audio_j, where + ": audio");
  if (f.has("shards")) {
    io::JsonFields g = f.object("shards");
    for (const auto& k : g.unknown_keys({"frames", "jpeg_quality", "clips_per_shard", "compression"}))
      fail_at(where, "unknown shards field '{}'", k);
    if (g.has("frames")) c.shards.frames = parse_frame_storage(g.get<std::string>("frames"), where + ": shards.frames");
    c.shards.jpeg_quality = g.get_or<int>("jpeg_quality", c.shards.jpeg_quality);
    c.shards.clips_per_shard = g.get_or<int>("clips_per_shard", c.shards.clips_per_shard);
    c.shards.compression = g.get_or<int>("compression", c.shards.compression);
  }
  c.validate(where);
  return c;
}

nlohmann::json PrepareConfig::to_json() const {
  const auto& a = audio.features;
  nlohmann::json audio_j = {{"extractor", a.extractor},     {"sample_rate", a.sample_rate}, {"fps", a.fps},
                            {"window_radius", a.window_radius}, {"wav2vec2_path", a.wav2vec2_path},
                            {"wav2vec2_config", a.wav2vec2_config}, {"layers", a.layers}, {"normalize", a.normalize},
                            {"n_mels", a.n_mels}, {"f_min", a.f_min}, {"f_max", a.f_max}, {"window_ms", a.window_ms}};
  if (audio.separator) {
    const auto& s = *audio.separator;
    audio_j["separator"] = {{"onnx", s.onnx},       {"sample_rate", s.sample_rate}, {"n_fft", s.n_fft},
                            {"hop_length", s.hop_length}, {"dim_f", s.dim_f},   {"dim_t", s.dim_t},
                            {"overlap", s.overlap}, {"compensate", s.compensate}, {"output_is_vocals", s.output_is_vocals},
                            {"denoise", s.denoise}};
  }
  return {{"fps", fps},
          {"sample_rate", sample_rate},
          {"resolution", resolution},
          {"clip_length", clip_length},
          {"clip_stride", clip_stride},
          {"min_clip_length", min_clip_length},
          {"crop_scale", crop_scale},
          {"analysis_max_side", analysis_max_side},
          {"arcface_onnx", arcface_onnx},
          {"vae", vae},
          {"vae_config", vae_config},
          {"face",
           {{"shape_predictor", face.shape_predictor},
            {"onnx_detector", face.onnx_detector},
            {"detect_max_side", face.detect_max_side},
            {"upsample", face.upsample},
            {"detect_every", face.detect_every}}},
          {"masks",
           {{"mask_size_ref", masks.mask_size_ref},
            {"face_blur", masks.face_blur},
            {"lip_blur", masks.lip_blur},
            {"box_expand", masks.box_expand},
            {"lip_expand", masks.lip_expand}}},
          {"clean", clean::clean_config_to_json(clean)},
          {"audio", audio_j},
          {"shards",
           {{"frames", frame_storage_name(shards.frames)},
            {"jpeg_quality", shards.jpeg_quality},
            {"clips_per_shard", shards.clips_per_shard},
            {"compression", shards.compression}}}};
}

void PrepareConfig::validate(const std::string& where) const {
  if (fps <= 0 || sample_rate <= 0) fail_at(where, "fps and sample_rate must be positive");
  if (resolution < 64 || resolution % 64 != 0)
    fail_at(where, "resolution must be a multiple of 64 (four latent mask levels), got {}", resolution);
  if (clip_length < 1 || clip_stride < 0) fail_at(where, "clip_length must be >= 1 and clip_stride >= 0");
  if (min_clip_length < 0 || min_clip_length > clip_length)
    fail_at(where, "min_clip_length must be in [0, clip_length = {}] (0: whole clips only), got {}", clip_length,
            min_clip_length);
  if (crop_scale < 1.0f) fail_at(where, "crop_scale must be >= 1 (the crop must hold the face), got {}", crop_scale);
  if (analysis_max_side < 64) fail_at(where, "analysis_max_side must be >= 64, got {}", analysis_max_side);
  if (face.detect_every < 1)
    fail_at(where, "face.detect_every must be >= 1 (1: detect on every frame), got {}", face.detect_every);
  if (audio.features.fps != fps)
    fail_at(where, "audio.fps ({}) must equal fps ({}): features are aligned to video frames", audio.features.fps, fps);
  if (audio.features.sample_rate != sample_rate)
    fail_at(where, "audio.sample_rate ({}) must equal sample_rate ({})", audio.features.sample_rate, sample_rate);
  if (audio.features.clip_length != 0)
    fail_at(where, "audio.clip_length must be 0 for prepare (features are cut per clip)");
  clean::validate(clean, where + ": clean");
  if (clean.fps != fps) fail_at(where, "clean.fps ({}) must equal fps ({})", clean.fps, fps);
}

}  // namespace hallo::data
