#pragma once
// Synthesizer's state, shared by synth.cpp (good clips) and variants.cpp.
#include <memory>

#include "data/face/landmarks.h"
#include "data/synth/clip.h"
#include "data/synth/mouth_rig.h"
#include "data/synth/portrait.h"
#include "data/synth/synth.h"
#include "media/video_writer.h"

namespace hallo::synth {

struct Synthesizer::Impl {
  explicit Impl(SynthConfig c);
  media::EncodeOptions encode_options(double fps) const;
  // Renders the plan's frames (and, if asked, its speech) into `video`.
  void write_clip(const std::filesystem::path& video, const ClipPlan& plan, bool with_audio);

  SynthConfig cfg;
  face::FaceAnalyzer analyzer;
  Portrait portrait;
  std::unique_ptr<MouthRig> rig;
};

}  // namespace hallo::synth
