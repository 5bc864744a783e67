#pragma once
// Settings of `hallo prepare` (configs/data/*.yaml). Every cleaning rule,
// crop, mask, audio and shard option lives here so a dataset can be rebuilt
// exactly from its config (saved next to the shards as prepare_config.json).
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "data/audio/audio_pipeline.h"
#include "data/clean/clean.h"
#include "data/face/landmarks.h"
#include "data/face/masks.h"
#include "data/shard/shard_writer.h"

namespace hallo::data {

struct PrepareConfig {
  double fps = 25;
  int sample_rate = 16000;
  int resolution = 512;          // square training frames
  int clip_length = 64;          // frames per clip (stage 2 needs n_sample_frames + n_motion_frames)
  int clip_stride = 0;           // 0 = clip_length (no overlap)
  // A segment's frames after its last whole clip (or a segment shorter than clip_length)
  // are kept as one shorter clip when there are at least this many. The default is what
  // upstream's stage 2 draws from a video: n_sample_frames 14 + n_motion_frames 2, plus
  // audio_margin 2 frames of audio context on each side (14 + 2 + 2 * 2 = 20, 0.8 s).
  // Stage 1 needs 2 frames (a reference and a target); its sampler uses any clip. The
  // samplers skip clips shorter than their own minimum, with one warning.
  int min_clip_length = 20;
  float crop_scale = 2.0f;       // square crop side = crop_scale * max(face w, h) of the clip's union face box
  int analysis_max_side = 512;   // face analysis / motion run on frames no larger than this
  std::string arcface_onnx;      // empty: zero face embedding, flagged invalid
  std::string vae;               // empty: no precomputed latents; else VAE folder or weights file
  std::string vae_config;        // config.json when `vae` is a single file
  face::FaceAnalyzerConfig face;
  face::MaskConfig masks;
  clean::CleanConfig clean;
  audio::AudioPipelineConfig audio;
  ShardWriterConfig shards;

  static PrepareConfig defaults();  // logmel audio, the rest as upstream
  static PrepareConfig from_json(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;
};

}  // namespace hallo::data
