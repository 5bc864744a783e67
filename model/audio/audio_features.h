#pragma once
// Per-video-frame audio features in Hallo's layout: a waveform at 16 kHz becomes
// emb [N, L, D] with N = ceil(seconds * fps) video frames (padded up to a
// multiple of clip_length when asked), L layers and D channels; the UNet's
// audio projection then reads 2r+1-frame windows [N, 2r+1, L, D].
//
// Two extractors share that contract:
//  - "wav2vec2": upstream's path (normalise, pad, CNN features linearly
//    interpolated with align_corners to N frames before projection + encoder,
//    hidden_states[1:] stacked, or only the last layer);
//  - "logmel": a weight-free log-mel filterbank sampled at the video frame
//    rate, L = 1, D = n_mels, for setups without wav2vec2 weights.
// The extractor id is stored with every shard; training refuses to mix ids.
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <string>
#include <vector>

namespace hallo::audio {

struct AudioFeatureConfig {
  std::string extractor = "wav2vec2";  // "wav2vec2" | "logmel"
  int sample_rate = 16000;
  double fps = 25.0;
  int window_radius = 2;       // windows of frames i-r..i+r (Hallo: 2 -> 5 frames)
  int64_t clip_length = 0;     // pad N up to a multiple of this (inference: frames per clip); 0 = no padding
  // wav2vec2
  std::string wav2vec2_path;   // HF folder or weights file
  std::string wav2vec2_config; // config.json when wav2vec2_path is a file outside its folder
  std::string layers = "all";  // "all" = hidden_states[1:], "last" = last layer, or "1,4,12" (1-based)
  bool normalize = true;       // Wav2Vec2FeatureExtractor do_normalize: zero mean, unit variance
  // logmel
  int n_mels = 80;
  double f_min = 0, f_max = 0;  // 0 = sample_rate / 2
  double window_ms = 80;        // analysis window centred on each video frame (2 frames at 25 fps)

  static AudioFeatureConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
  int64_t hop_samples() const;  // samples per video frame (640 at 16 kHz / 25 fps)
};

struct AudioFeatures {
  at::Tensor emb;            // [N, L, D] float32, N padded to clip_length
  int64_t audio_frames = 0;  // ceil(seconds * fps) before padding (upstream audio_length)
  std::string extractor_id;  // e.g. "wav2vec2:all:12x768:<weights>" or "logmel:80@25fps"
};

class AudioFeatureExtractor {
 public:
  virtual ~AudioFeatureExtractor() = default;
  // wave: mono float samples at config().sample_rate.
  virtual AudioFeatures extract(const std::vector<float>& wave) = 0;
  virtual std::string id() const = 0;
  virtual int64_t layers() const = 0;
  virtual int64_t dim() const = 0;
  const AudioFeatureConfig& config() const { return cfg_; }

 protected:
  explicit AudioFeatureExtractor(AudioFeatureConfig cfg) : cfg_(std::move(cfg)) {}
  AudioFeatureConfig cfg_;
};

std::unique_ptr<AudioFeatureExtractor> make_audio_extractor(const AudioFeatureConfig& cfg);

// ceil(samples / sample_rate * fps), computed exactly in integers like upstream's float ceil.
int64_t video_frames_for(int64_t samples, int sample_rate, double fps);
// HF Wav2Vec2FeatureExtractor normalisation: (x - mean) / sqrt(var + 1e-7).
at::Tensor normalize_wave(const at::Tensor& wave);
// [B, T, C] -> [B, n, C], linear with align_corners=True (Hallo's linear_interpolation).
at::Tensor interpolate_frames(const at::Tensor& feats, int64_t n);
// [N, L, D] -> [N, 2r+1, L, D]; indices clamped at both ends (inference.py process_audio_emb).
at::Tensor audio_windows(const at::Tensor& emb, int radius);

}  // namespace hallo::audio
