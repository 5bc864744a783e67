#include "model/audio/audio_features.h"

#include <ATen/ATen.h>
#include <c10/util/irange.h>
#include <nlohmann/json.hpp>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <sstream>

#include "core/error.h"
#include "model/audio/logmel.h"
#include "model/io/hf_config.h"
#include "model/wav2vec2/wav2vec2.h"

namespace hallo::audio {

AudioFeatureConfig AudioFeatureConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  for (const auto& k : f.unknown_keys({"extractor", "sample_rate", "fps", "window_radius", "clip_length",
                                       "wav2vec2_path", "wav2vec2_config", "layers", "normalize", "n_mels", "f_min",
                                       "f_max", "window_ms"}))
    fail_at(where, "unknown audio feature field '{}'", k);
  AudioFeatureConfig c;
  c.extractor = f.get_or<std::string>("extractor", c.extractor);
  c.sample_rate = f.get_or<int>("sample_rate", c.sample_rate);
  c.fps = f.get_or<double>("fps", c.fps);
  c.window_radius = f.get_or<int>("window_radius", c.window_radius);
  c.clip_length = f.get_or<int64_t>("clip_length", c.clip_length);
  c.wav2vec2_path = f.get_or<std::string>("wav2vec2_path", c.wav2vec2_path);
  c.wav2vec2_config = f.get_or<std::string>("wav2vec2_config", c.wav2vec2_config);
  c.layers = f.get_or<std::string>("layers", c.layers);
  c.normalize = f.get_or<bool>("normalize", c.normalize);
  c.n_mels = f.get_or<int>("n_mels", c.n_mels);
  c.f_min = f.get_or<double>("f_min", c.f_min);
  c.f_max = f.get_or<double>("f_max", c.f_max);
  c.window_ms = f.get_or<double>("window_ms", c.window_ms);
  c.validate(where);
  return c;
}

void AudioFeatureConfig::validate(const std::string& where) const {
  if (extractor != "wav2vec2" && extractor != "logmel")
    fail_at(where, "field 'extractor' is '{}', expected 'wav2vec2' or 'logmel'", extractor);
  if (sample_rate <= 0 || fps <= 0) fail_at(where, "sample_rate and fps must be positive");
  if (window_radius < 0) fail_at(where, "window_radius must be >= 0, got {}", window_radius);
  if (clip_length < 0) fail_at(where, "clip_length must be >= 0, got {}", clip_length);
  if (extractor == "wav2vec2" && wav2vec2_path.empty())
    fail_at(where, "extractor 'wav2vec2' needs 'wav2vec2_path' (HF folder or weights file); "
                   "use extractor 'logmel' when no wav2vec2 weights are available");
  if (extractor == "logmel" && (n_mels <= 0 || window_ms <= 0))
    fail_at(where, "n_mels and window_ms must be positive for the logmel extractor");
}

int64_t AudioFeatureConfig::hop_samples() const { return static_cast<int64_t>(sample_rate / fps); }

int64_t video_frames_for(int64_t samples, int sample_rate, double fps) {
  // Same double arithmetic as upstream's math.ceil(len / sr * fps).
  return static_cast<int64_t>(std::ceil(static_cast<double>(samples) / sample_rate * fps));
}

at::Tensor normalize_wave(const at::Tensor& wave) {
  // numpy's var is the population variance; HF computes in float32.
  auto x = wave.to(at::kFloat);
  auto mean = x.mean();
  auto var = (x - mean).pow(2).mean();
  return (x - mean) / at::sqrt(var + 1e-7);
}

at::Tensor interpolate_frames(const at::Tensor& feats, int64_t n) {
  // [B, T, C] -> [B, C, T] -> linear(align_corners) -> [B, n, C]
  auto x = feats.transpose(1, 2);
  x = at::upsample_linear1d(x, {n}, /*align_corners=*/true);
  return x.transpose(1, 2);
}

at::Tensor audio_windows(const at::Tensor& emb, int radius) {
  const int64_t n = emb.size(0);
  std::vector<int64_t> idx;
  idx.reserve(n * (2 * radius + 1));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = -radius; j <= radius; ++j) idx.push_back(std::clamp<int64_t>(i + j, 0, n - 1));
  auto sizes = emb.sizes().vec();
  sizes.insert(sizes.begin() + 1, 2 * radius + 1);
  return emb.index_select(0, at::tensor(idx, at::kLong)).view(sizes);  // [N, 2r+1, L, D]
}

namespace {

// Pads the waveform so N becomes a multiple of clip_length (upstream AudioProcessor.preprocess).
struct Padded {
  at::Tensor wave;
  int64_t frames, audio_frames;
};
Padded pad_to_clip(at::Tensor wave, const AudioFeatureConfig& c) {
  Padded p;
  p.audio_frames = video_frames_for(wave.size(0), c.sample_rate, c.fps);
  p.frames = p.audio_frames;
  if (c.clip_length > 0 && p.frames % c.clip_length != 0) {
    const int64_t extra = c.clip_length - p.frames % c.clip_length;
    wave = at::constant_pad_nd(wave, {0, extra * c.hop_samples()});
    p.frames += extra;
  }
  p.wave = wave;
  return p;
}

at::Tensor wave_tensor(const std::vector<float>& wave, const std::string& who) {
  if (wave.empty()) fail_at(who, "empty waveform");
  return at::from_blob(const_cast<float*>(wave.data()), {static_cast<int64_t>(wave.size())}, at::kFloat).clone();
}

class Wav2Vec2Extractor : public AudioFeatureExtractor {
 public:
  explicit Wav2Vec2Extractor(const AudioFeatureConfig& c) : AudioFeatureExtractor(c) {
    auto loaded = model::load_wav2vec2(c.wav2vec2_path, c.wav2vec2_config, /*strict=*/true);
    if (!loaded.report.ok()) fail_at(c.wav2vec2_path, "{}", loaded.report.summary());
    model_ = loaded.model;
    const int64_t total = model_->config().num_hidden_layers;
    if (c.layers == "all") {
      for (int64_t i = 1; i <= total; ++i) layers_.push_back(i);
    } else if (c.layers == "last") {
      layers_.push_back(total);
    } else {
      std::stringstream ss(c.layers);
      std::string tok;
      while (std::getline(ss, tok, ',')) {
        int64_t v = 0;
        try {
          v = std::stoll(tok);
        } catch (const std::exception&) {
          fail_at("audio features", "field 'layers' has '{}', expected 'all', 'last' or 1-based indices", tok);
        }
        if (v < 1 || v > total)
          fail_at("audio features", "layer {} is out of range 1..{} for {}", v, total, c.wav2vec2_path);
        layers_.push_back(v);
      }
    }
    std::string sel = c.layers;
    // The checkpoint's name (folder or file) makes features of different encoders distinct ids.
    auto src = std::filesystem::path(c.wav2vec2_path).lexically_normal();
    if (src.filename().empty()) src = src.parent_path();
    id_ = "wav2vec2:" + sel + ":" + std::to_string(layers_.size()) + "x" + std::to_string(dim()) + ":" +
          src.filename().string();
  }

  AudioFeatures extract(const std::vector<float>& wave) override {
    at::NoGradGuard ng;
    auto x = wave_tensor(wave, "wav2vec2 features");
    if (cfg_.normalize) x = normalize_wave(x);
    auto p = pad_to_clip(x, cfg_);
    auto feats = model_->extract_features(p.wave.unsqueeze(0));        // [1, T, C]
    auto hs = model_->encode(interpolate_frames(feats, p.frames));     // (L+1) x [1, N, D]
    std::vector<at::Tensor> keep;
    for (auto l : layers_) keep.push_back(hs[l][0]);
    AudioFeatures out;
    out.emb = at::stack(keep, 1).contiguous();  // [N, L, D]
    out.audio_frames = p.audio_frames;
    out.extractor_id = id_;
    return out;
  }
  std::string id() const override { return id_; }
  int64_t layers() const override { return static_cast<int64_t>(layers_.size()); }
  int64_t dim() const override { return model_->config().hidden_size; }

 private:
  model::Wav2Vec2Model model_{nullptr};
  std::vector<int64_t> layers_;
  std::string id_;
};

class LogMelExtractor : public AudioFeatureExtractor {
 public:
  explicit LogMelExtractor(const AudioFeatureConfig& c) : AudioFeatureExtractor(c) {
    s_.sample_rate = c.sample_rate;
    s_.fps = c.fps;
    s_.n_mels = c.n_mels;
    s_.f_min = c.f_min;
    s_.f_max = c.f_max;
    s_.window_ms = c.window_ms;
    mel_filterbank(c.sample_rate, 64, 1, c.f_min, c.f_max);  // validates the band edges early
    id_ = fmt::format("logmel:{}@{}fps:{}Hz", c.n_mels, c.fps, c.sample_rate);
  }
  AudioFeatures extract(const std::vector<float>& wave) override {
    at::NoGradGuard ng;
    auto p = pad_to_clip(wave_tensor(wave, "logmel features"), cfg_);
    AudioFeatures out;
    out.emb = log_mel_frames(p.wave, p.frames, s_).unsqueeze(1).contiguous();  // [N, 1, n_mels]
    out.audio_frames = p.audio_frames;
    out.extractor_id = id_;
    return out;
  }
  std::string id() const override { return id_; }
  int64_t layers() const override { return 1; }
  int64_t dim() const override { return cfg_.n_mels; }

 private:
  LogMelSettings s_;
  std::string id_;
};

}  // namespace

std::unique_ptr<AudioFeatureExtractor> make_audio_extractor(const AudioFeatureConfig& cfg) {
  cfg.validate("audio features");
  if (cfg.extractor == "wav2vec2") return std::make_unique<Wav2Vec2Extractor>(cfg);
  return std::make_unique<LogMelExtractor>(cfg);
}

}  // namespace hallo::audio
