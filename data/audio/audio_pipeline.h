#pragma once
// From a media file to Hallo audio features: decode (any container) -> optional
// vocal isolation -> resample to the extractor's rate -> wav2vec2 or log-mel.
// Shared by `hallo audio-features`, `hallo prepare` and inference.
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "data/audio/vocal_separator.h"
#include "model/audio/audio_features.h"

namespace hallo::audio {

struct AudioPipelineConfig {
  AudioFeatureConfig features;
  std::optional<SeparatorConfig> separator;  // present = isolate vocals first

  // The feature fields at top level plus an optional "separator" object.
  static AudioPipelineConfig from_json(const nlohmann::json& j, const std::string& where);
};

class AudioPipeline {
 public:
  explicit AudioPipeline(const AudioPipelineConfig& cfg);
  ~AudioPipeline();
  // Mono speech at features.sample_rate, vocals isolated when configured.
  std::vector<float> load_speech(const std::filesystem::path& media) const;
  AudioFeatures from_file(const std::filesystem::path& media) const;
  AudioFeatures from_samples(const std::vector<float>& mono) const;  // at features.sample_rate
  AudioFeatureExtractor& extractor() const { return *extractor_; }
  const AudioPipelineConfig& config() const { return cfg_; }

 private:
  AudioPipelineConfig cfg_;
  std::unique_ptr<AudioFeatureExtractor> extractor_;
  std::unique_ptr<VocalSeparator> separator_;
};

}  // namespace hallo::audio
