// make_talking_head: plan a clip, render its frames into VideoWriter, write
// the ground truth next to it.
#include "data/synth/synth.h"

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/synth/clip.h"
#include "data/synth/synth_impl.h"
#include "media/video_writer.h"

namespace hallo::synth {

namespace fs = std::filesystem;

std::string clip_name(int index) { return fmt::format("synth_{:04d}", index); }

namespace {

face::FaceAnalyzerConfig analyzer_config(const SynthConfig& cfg) {
  face::FaceAnalyzerConfig fc;
  if (!cfg.shape_predictor.empty()) fc.shape_predictor = cfg.shape_predictor;
  fc.detect_max_side = 1024;  // the stock portrait's face is ~1/5 of it: too small for the default 320
  return fc;
}

// Validates the config and resolves the portrait path before the slow
// landmark model is loaded, so mistakes are reported at once.
SynthConfig checked(SynthConfig c) {
  if (!(c.seconds > 0 && c.seconds <= 3600)) fail("synth: seconds must be in (0, 3600], got {}", c.seconds);
  if (!(c.fps > 0 && c.fps <= 120)) fail("synth: fps must be in (0, 120], got {}", c.fps);
  if (c.size < 64 || c.size > 4096) fail("synth: size must be in [64, 4096], got {}", c.size);
  if (c.sample_rate < 8000 || c.sample_rate > 192000)
    fail("synth: sample rate must be in [8000, 192000], got {}", c.sample_rate);
  if (c.portrait.empty()) c.portrait = default_portrait_path();
  std::error_code ec;
  if (!fs::is_regular_file(c.portrait, ec))
    fail_at(c.portrait.string(), "portrait not found; run scripts/install-deps.sh, which extracts it from python3-skimage");
  return c;
}

}  // namespace

Synthesizer::Impl::Impl(SynthConfig c) : cfg(checked(std::move(c))), analyzer(analyzer_config(cfg)) {
  portrait = load_portrait(cfg.portrait, cfg.size, cfg.crop_scale, analyzer);
  rig = std::make_unique<MouthRig>(portrait.lm, portrait.rgb.size(), cfg.mouth);
}

media::EncodeOptions Synthesizer::Impl::encode_options(double fps) const {
  media::EncodeOptions e;
  e.fps = fps;
  e.crf = cfg.crf;
  e.preset = cfg.preset;
  return e;
}

void Synthesizer::Impl::write_clip(const fs::path& video, const ClipPlan& plan, bool with_audio) {
  media::VideoWriter w(video, portrait.rgb.cols, portrait.rgb.rows, encode_options(plan.fps));
  for (int i = 0; i < plan.frames; ++i) {
    const cv::Mat frame = render_frame(portrait, *rig, plan, i);
    w.write_rgb(frame.data);  // fresh Mats from warpAffine are continuous
  }
  if (with_audio) w.set_audio(plan.speech.samples, plan.speech.sample_rate);
  w.close();
}

Synthesizer::Synthesizer(SynthConfig cfg) : impl_(std::make_unique<Impl>(std::move(cfg))) {}
Synthesizer::~Synthesizer() = default;
Synthesizer::Synthesizer(Synthesizer&&) noexcept = default;
Synthesizer& Synthesizer::operator=(Synthesizer&&) noexcept = default;
const SynthConfig& Synthesizer::config() const { return impl_->cfg; }

SynthResult Synthesizer::make(int index) {
  if (index < 0) fail("synth: video index must be >= 0, got {}", index);
  const SynthConfig& cfg = impl_->cfg;
  std::error_code ec;
  fs::create_directories(cfg.out_dir, ec);
  if (!fs::is_directory(cfg.out_dir)) fail_at(cfg.out_dir.string(), "cannot create output directory");

  const ClipPlan plan = plan_clip(cfg, static_cast<uint64_t>(index), cfg.fps, cfg.sample_rate, impl_->portrait,
                                  cfg.out_dir);
  SynthResult r;
  const std::string name = clip_name(index);
  r.video = cfg.out_dir / (name + ".mp4");
  r.truth = cfg.out_dir / (name + ".json");
  r.frames = plan.frames;
  r.seconds = plan.frames / plan.fps;
  impl_->write_clip(r.video, plan, true);
  // Written last: a .json next to an .mp4 means the pair is complete.
  write_file_atomic(r.truth, truth_json(cfg, index, plan, impl_->portrait, *impl_->rig, r.video.filename().string()));
  return r;
}

SynthResult make_talking_head(const SynthConfig& cfg, int index) { return Synthesizer(cfg).make(index); }

std::vector<fs::path> make_variants(const SynthConfig& cfg, const fs::path& dir) {
  return Synthesizer(cfg).make_variants(dir);
}

}  // namespace hallo::synth
