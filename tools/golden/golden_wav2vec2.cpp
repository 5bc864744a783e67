// wav2vec2 + Hallo's audio path: in.input_values (normalised, zero-padded) and
// in.seq_len -> out.extract_features (CNN, ~50 Hz), out.interpolated_features
// (align_corners resample to seq_len video frames), out.hidden_states.k,
// out.last_hidden_state, out.audio_emb [N, layers, D] (hidden_states[1:]) and
// out.audio_emb_windows [N, 5, layers, D].
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "model/audio/audio_features.h"
#include "model/wav2vec2/wav2vec2.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_wav2vec2(const GoldenCase& c) {
  model::Wav2Vec2Model m(model::Wav2Vec2Config::from_json(c.config, c.name + ".config.json"));
  c.load_into(*m, model::wav2vec2_translate_key);
  m->eval();
  torch::NoGradGuard ng;
  const auto& x = c.input("in.input_values");  // [1, S]
  const int64_t n = c.input("in.seq_len").item<int64_t>();
  Outputs o;
  auto feats = m->extract_features(x);                 // [1, T, C]
  auto interp = audio::interpolate_frames(feats, n);   // [1, N, C]
  auto hs = m->encode(interp);                         // (L+1) x [1, N, D]
  o["out.extract_features"] = feats;
  o["out.interpolated_features"] = interp;
  for (size_t k = 0; k < hs.size(); ++k) o["out.hidden_states." + std::to_string(k)] = hs[k];
  o["out.last_hidden_state"] = hs.back();
  auto emb = at::stack(std::vector<at::Tensor>(hs.begin() + 1, hs.end()), 2)[0];  // [1, N, L, D] -> [N, L, D]
  o["out.audio_emb"] = emb;
  // Upstream's process_audio_emb hard-codes frames i-2..i+2; a harness may say otherwise.
  int radius = 2;
  if (auto h = c.config.find("_harness"); h != c.config.end() && h->contains("window_radius"))
    radius = h->at("window_radius").get<int>();
  o["out.audio_emb_windows"] = audio::audio_windows(emb, radius);
  return o;
}

}  // namespace hallo::golden
