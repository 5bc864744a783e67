#pragma once
// Synthetic clips whose content can be recognised after a round trip:
// red = clip marker, blue = frame marker (frame * 4), green = a vertical
// gradient (or random noise for exact raw-storage checks); audio[f, l, 0] = f.
#include <filesystem>
#include <string>

#include "data/shard/clip_record.h"

namespace hallo::data::testing {

struct SynthOptions {
  int num_frames = 40;
  int height = 64, width = 64;
  int audio_layers = 2, audio_dim = 3;
  std::string audio_extractor = "test:abc";
  bool noise_frames = false;  // random pixels (raw storage is exact, JPEG is not)
  bool latents = false;
  bool extras = true;         // face boxes, landmarks, meta
  unsigned seed = 1;
};

inline SynthOptions with_frames(int n) {
  SynthOptions o;
  o.num_frames = n;
  return o;
}

ClipRecord make_clip(const std::string& id, int clip_marker, const SynthOptions& o = {});

// Frame marker encoded in the blue channel.
inline int frame_marker(int f) { return (f * 4) % 256; }
inline int clip_marker_value(int c) { return (c * 20 + 10) % 256; }

// A fresh, empty directory under the gtest temp dir.
std::filesystem::path fresh_dir(const std::string& name);

}  // namespace hallo::data::testing
