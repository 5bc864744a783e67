#pragma once
// Optional vocal isolation before feature extraction, as upstream Hallo does
// with an MDX-Net ONNX model (audio-separator, Kim_Vocal_2). The network maps
// a stereo complex spectrogram block [1, 4, dim_f, dim_t] (channels: L.re,
// L.im, R.re, R.im) to the same layout for one stem. We run it with OpenCV DNN
// on overlapping blocks, cross-fade them, and invert the STFT. Off by default:
// used only when the user supplies a model.
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace hallo::audio {

struct SeparatorConfig {
  std::string onnx;           // model path; empty = no separation
  int sample_rate = 44100;    // rate the model was trained at
  int n_fft = 7680;           // Kim_Vocal_2 / UVR-MDX-NET "Voc" models
  int hop_length = 1024;
  int dim_f = 3072;           // frequency bins the model sees (the rest are zeroed)
  int dim_t = 256;            // STFT frames per block
  double overlap = 0.5;       // block overlap, cross-faded
  double compensate = 1.0;    // the model's output gain correction
  bool output_is_vocals = true;  // false: the model outputs the accompaniment, vocals = mix - output
  bool denoise = false;       // average model(x) and -model(-x) (audio-separator's enable_denoise)

  static SeparatorConfig from_json(const nlohmann::json& j, const std::string& where);
  void validate(const std::string& where) const;
};

class VocalSeparator {
 public:
  explicit VocalSeparator(SeparatorConfig cfg);  // loads the ONNX model; error names the path
  ~VocalSeparator();
  VocalSeparator(const VocalSeparator&) = delete;
  VocalSeparator& operator=(const VocalSeparator&) = delete;
  // mono samples at config().sample_rate -> isolated vocals, same length and rate.
  std::vector<float> separate(const std::vector<float>& mono);
  const SeparatorConfig& config() const { return cfg_; }

 private:
  struct Net;
  SeparatorConfig cfg_;
  std::unique_ptr<Net> net_;
};

}  // namespace hallo::audio
