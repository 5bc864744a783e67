#include "trainer/data/shard_validator.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "model/nn/autocast.h"
#include "data/dataset/image_tensors.h"
#include "data/shard/shard_reader.h"
#include "media/audio_reader.h"
#include "media/video_writer.h"
#include "inference/animator.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

namespace {

size_t find_clip(const data::ShardReader& r, const std::string& clip) {
  const auto& clips = r.index().clips();
  if (clips.empty()) fail_at(r.dir().string(), "validation shards hold no clips");
  if (clip.empty()) return clips.size() - 1;
  if (std::all_of(clip.begin(), clip.end(), ::isdigit)) {
    const size_t i = std::stoul(clip);
    if (i >= clips.size()) fail_at(r.dir().string(), "val.clip {} is out of range ({} clips)", i, clips.size());
    return i;
  }
  for (size_t i = 0; i < clips.size(); ++i)
    if (clips[i].clip_id == clip) return i;
  fail_at(r.dir().string(), "no clip '{}' (val.clip)", clip);
}

}  // namespace

std::string validation_clip_id(const fs::path& shard_dir, const std::string& clip) {
  data::ShardReader r(shard_dir);
  return r.index().clips()[find_clip(r, clip)].clip_id;
}

struct ShardValidator::Impl {
  TrainConfig cfg;
  std::string id, source;
  double t_start = 0, fps = 25;
  inference::AnimateInputs in;
  int frames = 0, height = 0, width = 0;
};

ShardValidator::ShardValidator(const TrainConfig& cfg, const fs::path& shard_dir, const std::string& clip)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.cfg = cfg;
  data::ShardReader reader(shard_dir);
  const size_t index = find_clip(reader, clip);
  const data::ClipRecord rec = reader.read_clip(index, /*frames=*/true);
  s.id = rec.id;
  s.source = rec.source;
  s.t_start = rec.t_start;
  s.fps = rec.fps;
  s.height = cfg.data.train_height;
  s.width = cfg.data.train_width;
  s.frames = std::min(cfg.data.n_sample_frames, rec.num_frames);
  const int r = cfg.data.audio_margin;

  // Reference = first frame; the first clip of inference uses it as the motion frames too.
  s.in.frames = s.frames;
  s.in.reference = at::empty({3, s.height, s.width});
  data::put_image(s.in.reference, rec.frames.front());
  at::Tensor region = at::empty({1, s.height, s.width});
  data::put_mask(region, rec.face_region);
  s.in.face_region = region.expand({3, -1, -1}).unsqueeze(0).contiguous();  // [1, 3, H, W]
  s.in.face_emb = rec.face_emb.empty() ? at::zeros({1, 512})
                                       : at::tensor(rec.face_emb).view({1, static_cast<int64_t>(rec.face_emb.size())});
  if (!rec.audio.empty()) {
    const int64_t L = rec.audio_layers, D = rec.audio_dim, F = rec.num_frames;
    auto audio = at::from_blob(const_cast<float*>(rec.audio.data()), {F, L, D}).clone();
    auto idx = at::empty({s.frames, 2 * r + 1}, at::kLong);
    for (int i = 0; i < s.frames; ++i)
      for (int k = -r; k <= r; ++k) idx[i][k + r] = std::clamp<int64_t>(i + k, 0, F - 1);
    s.in.audio_windows = audio.index_select(0, idx.view({-1})).view({s.frames, 2 * r + 1, L, D});
  }
  for (int l = 0; l < data::kMaskLevels; ++l) {
    const cv::Size sz = data::mask_level_size(s.height, s.width, l);
    auto level = [&](const cv::Mat& mask) {
      at::Tensor t = at::empty({1, sz.height, sz.width});
      data::put_mask(t, mask);
      return t.view({1, -1});  // [1, h*w]: the animator repeats it over frames
    };
    s.in.masks.full.push_back(level(rec.pose_masks[static_cast<size_t>(l)]));
    s.in.masks.face.push_back(level(rec.face_masks[static_cast<size_t>(l)]));
    s.in.masks.lip.push_back(level(rec.lip_masks[static_cast<size_t>(l)]));
  }
  spdlog::info("validation clip: '{}' of {} ({} frames)", s.id, shard_dir.string(), s.frames);
}

ShardValidator::~ShardValidator() = default;

const std::string& ShardValidator::clip_id() const { return impl_->id; }

fs::path ShardValidator::render(StepModels& models, int64_t step, const fs::path& out_dir) {
  auto& s = *impl_;
  if (!models.vae) fail("validation needs the VAE");
  at::NoGradGuard no_grad;
  // The inference path users run, seeded like upstream's validation: the training RNG is untouched.
  inference::AnimateSettings as;
  as.frames_per_clip = s.frames;
  as.motion_frames = s.cfg.data.n_motion_frames;
  as.clip.num_inference_steps = s.cfg.val.inference_steps;
  as.clip.guidance_scale = s.cfg.val.cfg_scale;
  as.seed = static_cast<uint64_t>(s.cfg.seed);
  as.device = models.net->parameters().front().device();  // validation renders where training runs
  // ... and in its precision (low-precision frozen weights meet float32 activations only under autocast).
  const c10::ScalarType mp = nn::mixed_precision_dtype(s.cfg.solver.mixed_precision.c_str());
  nn::AutocastGuard autocast(as.device.type(), mp, mp != at::kFloat && as.device.is_cuda());
  inference::Animator animator(models.net, models.vae, s.cfg.validation_scheduler(), as);
  // A stage-1 net normalises each frame on its own, which is exactly per-frame inference.
  auto& ucfg = models.net->denoising_unet->mutable_config();
  const bool inflated = ucfg.use_inflated_groupnorm;
  ucfg.use_inflated_groupnorm = true;
  at::Tensor video;
  try {
    video = animator.render(s.in);  // [F, 3, H, W] in [0, 1]
  } catch (...) {
    ucfg.use_inflated_groupnorm = inflated;
    throw;
  }
  ucfg.use_inflated_groupnorm = inflated;

  fs::create_directories(out_dir);
  const fs::path out = out_dir / fmt::format("step-{:06d}.mp4", step);
  media::EncodeOptions eo;
  eo.fps = s.fps;
  media::VideoWriter w(out, s.width, s.height, eo);
  const at::Tensor frames =
      (video.permute({0, 2, 3, 1}) * 255.0).round().clamp(0, 255).to(at::kByte).contiguous();  // [F, H, W, 3]
  for (int64_t f = 0; f < frames.size(0); ++f) w.write_rgb(frames[f].data_ptr<uint8_t>());
  try {
    media::AudioDecodeOptions ao;
    ao.start_s = s.t_start;
    ao.duration_s = static_cast<double>(s.frames) / s.fps;
    w.set_audio(media::read_audio(s.source, ao), ao.sample_rate);
  } catch (const std::exception& e) {
    spdlog::warn("validation video without audio: {}", e.what());
  }
  w.close();
  return out;
}

}  // namespace hallo::trainer
