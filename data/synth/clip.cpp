// One clip's plan, frame rendering and ground truth.
#include "data/synth/clip.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "data/synth/rng.h"

namespace hallo::synth {

namespace {

// Purposes for derive_seed: independent random streams per clip.
constexpr uint64_t kSpeechStream = 1, kHeadStream = 2;

double round6(double v) { return std::round(v * 1e6) / 1e6; }

}  // namespace

cv::Point2f face_center(const Portrait& portrait) {
  const cv::Rect2f b = face::face_box(portrait.lm);
  return {b.x + b.width / 2, b.y + b.height / 2};
}

ClipPlan plan_clip(const SynthConfig& cfg, uint64_t index, double fps, int sample_rate, const Portrait& portrait,
                   const std::filesystem::path& tmp_dir, bool silent) {
  ClipPlan p;
  p.fps = fps;
  p.frames = std::max(1, static_cast<int>(std::lround(cfg.seconds * fps)));
  p.speech_seed = derive_seed(cfg.seed, index, kSpeechStream);
  p.head_seed = derive_seed(cfg.seed, index, kHeadStream);
  SpeechOptions so;
  so.espeak = cfg.espeak;
  so.voice = cfg.voice;
  so.sample_rate = sample_rate;
  so.seconds = p.frames / fps;
  if (silent) {
    p.speech.sample_rate = sample_rate;
    p.speech.voice = cfg.voice;
    p.speech.samples.assign(static_cast<size_t>(std::llround(so.seconds * sample_rate)), 0.0f);
  } else {
    p.speech = synthesize_speech(so, p.speech_seed, tmp_dir);
  }
  p.rms = frame_rms(p.speech.samples, sample_rate, fps, p.frames);
  p.opening = mouth_curve(p.rms, cfg.loudness);
  p.head = HeadMotion(p.head_seed, portrait.rgb.size(), face_center(portrait), cfg.head);
  for (int i = 0; i < p.frames; ++i) p.head_at.push_back(p.head.at(i / fps));
  return p;
}

cv::Mat render_frame(const Portrait& portrait, const MouthRig& rig, const ClipPlan& plan, int i) {
  return plan.head.apply(rig.render(portrait.rgb, plan.opening.at(i)), plan.head_at.at(i));
}

std::string truth_json(const SynthConfig& cfg, int index, const ClipPlan& plan, const Portrait& portrait,
                       const MouthRig& rig, const std::string& video_name) {
  using J = nlohmann::ordered_json;
  J j;
  j["format"] = "hallo-synth";
  j["version"] = 1;
  j["video"] = video_name;
  j["seed"] = cfg.seed;
  j["index"] = index;
  j["fps"] = plan.fps;
  j["frames"] = plan.frames;
  j["seconds"] = plan.frames / plan.fps;
  j["width"] = portrait.rgb.cols;
  j["height"] = portrait.rgb.rows;
  j["sample_rate"] = plan.speech.sample_rate;
  j["audio_samples"] = plan.speech.samples.size();

  std::string text;
  for (const auto& s : plan.speech.sentences) text += (text.empty() ? "" : " ") + s;
  j["speech"] = {{"engine", "espeak-ng"},     {"voice", plan.speech.voice}, {"speed_wpm", plan.speech.speed_wpm},
                 {"pitch", plan.speech.pitch}, {"seed", plan.speech_seed},   {"sentences", plan.speech.sentences},
                 {"text", text}};

  J lm = J::array();
  for (const auto& p : portrait.lm) lm.push_back({round6(p.x), round6(p.y)});
  j["portrait"] = {{"path", portrait.source.string()},
                   {"crop", {portrait.crop.x, portrait.crop.y, portrait.crop.width, portrait.crop.height}},
                   {"landmarks", lm}};

  J opening = J::array(), drop = J::array(), rms = J::array();
  for (int i = 0; i < plan.frames; ++i) {
    opening.push_back(round6(plan.opening[i]));
    drop.push_back(round6(rig.drop_px(plan.opening[i])));
    rms.push_back(round6(plan.rms[i]));
  }
  j["mouth"] = {{"gain", round6(cfg.mouth.gain)},
                {"note", "opening 0..1 from smoothed, normalised audio RMS; lip_drop_px = opening * gain * "
                         "|landmark 27 - landmark 8| (lower-lip drop at the mouth centre, before head motion)"},
                {"opening", opening},
                {"lip_drop_px", drop},
                {"audio_rms", rms}};

  const cv::Point2f c = plan.head.center();
  J frames = J::array();
  for (const auto& h : plan.head_at)
    frames.push_back({{"tx", round6(h.tx)}, {"ty", round6(h.ty)}, {"rot_deg", round6(h.rot_deg)},
                      {"scale", round6(h.scale)}});
  j["head"] = {{"seed", plan.head_seed},
               {"center", {round6(c.x), round6(c.y)}},
               {"note", "output = warpAffine(getRotationMatrix2D(center, rot_deg, scale) + [tx, ty]) of the "
                        "mouth-rendered portrait; rot_deg counter-clockwise"},
               {"frames", frames}};
  return j.dump(1) + "\n";
}

}  // namespace hallo::synth
