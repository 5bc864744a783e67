#include "data/audio/audio_pipeline.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "media/audio_reader.h"
#include "media/resample.h"

namespace hallo::audio {

AudioPipelineConfig AudioPipelineConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "audio config must be an object");
  AudioPipelineConfig c;
  nlohmann::json feats = j;
  if (auto it = j.find("separator"); it != j.end()) {
    if (!it->is_null()) c.separator = SeparatorConfig::from_json(*it, where + ": separator");
    feats.erase("separator");
  }
  c.features = AudioFeatureConfig::from_json(feats, where);
  return c;
}

AudioPipeline::AudioPipeline(const AudioPipelineConfig& cfg)
    : cfg_(cfg), extractor_(make_audio_extractor(cfg.features)) {
  if (cfg_.separator && !cfg_.separator->onnx.empty()) separator_ = std::make_unique<VocalSeparator>(*cfg_.separator);
}

AudioPipeline::~AudioPipeline() = default;

std::vector<float> AudioPipeline::load_speech(const std::filesystem::path& media) const {
  const int rate = cfg_.features.sample_rate;
  if (!separator_) return media::read_audio(media, {rate});
  // Separate at the model's own rate, then resample for the extractor.
  const int sep_rate = separator_->config().sample_rate;
  auto vocals = separator_->separate(media::read_audio(media, {sep_rate}));
  return sep_rate == rate ? vocals : media::resample(vocals, sep_rate, rate);
}

AudioFeatures AudioPipeline::from_file(const std::filesystem::path& media) const {
  auto wave = load_speech(media);
  if (wave.empty()) fail_at(media.string(), "audio stream decoded to zero samples");
  return extractor_->extract(wave);
}

AudioFeatures AudioPipeline::from_samples(const std::vector<float>& mono) const { return extractor_->extract(mono); }

}  // namespace hallo::audio
