#pragma once
// Internals shared by make_talking_head and the variants: what one clip shows
// (speech, per-frame mouth opening and head transform), how a frame is drawn,
// and its JSON ground truth.
#include <opencv2/core.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "data/synth/head_motion.h"
#include "data/synth/portrait.h"
#include "data/synth/speech.h"
#include "data/synth/synth.h"

namespace hallo::synth {

struct ClipPlan {
  uint64_t speech_seed = 0, head_seed = 0;
  double fps = 25;
  int frames = 0;
  SpeechTrack speech;                // exactly frames / fps seconds
  std::vector<float> rms;            // [frames] audio RMS per frame span
  std::vector<float> opening;        // [frames] mouth opening 0..1 that is rendered
  HeadMotion head;
  std::vector<HeadTransform> head_at; // [frames]
};

// Seeds come from (cfg.seed, index). silent: zero audio and a closed mouth
// (no espeak call).
ClipPlan plan_clip(const SynthConfig& cfg, uint64_t index, double fps, int sample_rate, const Portrait& portrait,
                   const std::filesystem::path& tmp_dir, bool silent = false);

// Frame `i` of the plan: mouth opened, then the head moved. [size, size] RGB
cv::Mat render_frame(const Portrait& portrait, const MouthRig& rig, const ClipPlan& plan, int i);

// Centre of the portrait's face box: the head motion's pivot.
cv::Point2f face_center(const Portrait& portrait);

// Ground-truth JSON text (deterministic: no timestamps, fixed key order).
std::string truth_json(const SynthConfig& cfg, int index, const ClipPlan& plan, const Portrait& portrait,
                       const MouthRig& rig, const std::string& video_name);

}  // namespace hallo::synth
