#include "inference/animator.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "model/schedulers/ddim.h"

namespace hallo::inference {

int64_t clip_count(int64_t frames, int frames_per_clip) {
  return (frames + frames_per_clip - 1) / frames_per_clip;
}

at::Tensor shuffle_audio_blocks(const at::Tensor& windows, int64_t frames, int block, uint64_t seed) {
  if (block < 1) fail("shuffle_audio_blocks: block must be >= 1, got {}", block);
  frames = std::min(frames, windows.size(0));
  const int64_t blocks = (frames + block - 1) / block;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor order = at::randperm(blocks, gen, at::TensorOptions().dtype(at::kLong));
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(windows.size(0)));
  for (int64_t k = 0; k < blocks; ++k) {
    const int64_t b = order[k].item<int64_t>();
    for (int64_t r = b * block; r < std::min(frames, (b + 1) * block); ++r) rows.push_back(r);
  }
  for (int64_t r = frames; r < windows.size(0); ++r) rows.push_back(r);
  return windows.index_select(0, at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(windows.device()));
}

Animator::Animator(model::HalloNet net, model::AutoencoderKL vae, sched::SchedulerConfig scheduler, AnimateSettings s)
    : net_(std::move(net)), vae_(std::move(vae)), scheduler_(std::move(scheduler)), s_(std::move(s)) {
  if (s_.frames_per_clip < 1) fail("animate: frames per clip must be >= 1, got {}", s_.frames_per_clip);
  if (s_.motion_frames < 0) fail("animate: motion frames must be >= 0, got {}", s_.motion_frames);
}

int64_t Animator::latent_downscale() const { return int64_t{1} << (vae_->config().block_out_channels.size() - 1); }

at::Tensor Animator::render(const AnimateInputs& in, const std::function<void(const ClipProgress&)>& on_clip,
                            model::ClipRecord* record) {
  torch::NoGradGuard no_grad;
  if (in.reference.dim() != 3 || in.reference.size(0) != 3) fail("animate: reference must be [3, H, W], got {}", c10::str(in.reference.sizes()));
  const bool has_audio = in.audio_windows.defined();  // stage-1 nets render without audio
  if (has_audio && in.audio_windows.dim() != 4)
    fail("animate: audio windows must be [N, 2r+1, L, D], got {}", c10::str(in.audio_windows.sizes()));
  if (!has_audio && in.frames < 1) fail("animate: without audio features, the frame count must be given");
  const int64_t H = in.reference.size(1), W = in.reference.size(2), down = latent_downscale();
  if (H % down || W % down) fail("animate: the frame size {}x{} must be a multiple of {} (the VAE's downscale)", W, H, down);
  const int64_t n_audio = has_audio ? in.audio_windows.size(0) : in.frames;
  const int64_t frames = in.frames > 0 ? in.frames : n_audio;
  if (frames > n_audio) fail("animate: {} frames asked for, but the audio features cover {}", frames, n_audio);
  const int F = s_.frames_per_clip;
  const int64_t clips = clip_count(frames, F);
  if (!in.init_noise.empty() && static_cast<int64_t>(in.init_noise.size()) != clips)
    fail("animate: {} recorded noise tensors for {} clips", in.init_noise.size(), clips);

  const auto opts = at::TensorOptions().dtype(s_.dtype).device(s_.device);
  auto dev = [&](const at::Tensor& t) { return t.to(opts); };
  // Audio padded to whole clips by repeating its last window (upstream pads the waveform).
  at::Tensor windows = has_audio ? in.audio_windows.narrow(0, 0, std::min(n_audio, clips * F)) : at::Tensor();
  if (has_audio && windows.size(0) < clips * F) {
    const auto last = windows.narrow(0, windows.size(0) - 1, 1);
    windows = at::cat({windows, last.expand({clips * F - windows.size(0), -1, -1, -1})}, 0);
  }

  model::ClipInputs ci;
  ci.face_emb = dev(in.face_emb);
  ci.face_region = dev(in.face_region);
  auto per_frame = [&](const std::vector<at::Tensor>& levels) {  // [1, h*w] -> [F, h*w] per level
    std::vector<at::Tensor> out;
    for (const auto& m : levels) out.push_back(dev(m.reshape({1, -1}).expand({F, -1}).contiguous()));
    return out;
  };
  ci.masks = {per_frame(in.masks.full), per_frame(in.masks.face), per_frame(in.masks.lip)};
  ci.motion_scale = dev(at::tensor({s_.pose_weight, s_.face_weight, s_.lip_weight}, at::kDouble));
  const at::Tensor ref = dev(in.reference).unsqueeze(0);  // [1, 3, H, W] in [-1, 1]

  // One generator for the whole video: clip k's noise follows clip k-1's draws.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(s_.seed);
  const int64_t C = vae_->config().latent_channels;
  sched::DDIMScheduler scheduler(scheduler_, "inference scheduler");  // set_timesteps per clip resets it
  std::vector<at::Tensor> videos;  // per clip [F, 3, H, W] float32 CPU in [0, 1]
  at::Tensor previous;             // the last clip's frames, on the device, in [0, 1]
  for (int64_t k = 0; k < clips; ++k) {
    if (on_clip) on_clip({static_cast<int>(k), static_cast<int>(clips)});
    // Motion frames: the reference for clip 1, then the previous clip's last frames.
    at::Tensor motion;
    if (s_.motion_frames > 0) {
      if (!previous.defined() && in.first_motion.defined()) {
        if (in.first_motion.dim() != 4 || in.first_motion.size(0) != s_.motion_frames)
          fail("animate: first motion frames must be [{}, 3, H, W], got {}", s_.motion_frames, c10::str(in.first_motion.sizes()));
        motion = dev(in.first_motion);
      } else if (!previous.defined()) {
        motion = ref.expand({s_.motion_frames, -1, -1, -1});
      } else {
        const int64_t m = std::min<int64_t>(s_.motion_frames, previous.size(0));
        motion = previous.narrow(0, previous.size(0) - m, m) * 2.0 - 1.0;
        if (m < s_.motion_frames)  // clips shorter than the motion window: repeat the oldest
          motion = at::cat({motion.narrow(0, 0, 1).expand({s_.motion_frames - m, -1, -1, -1}), motion}, 0);
      }
    }
    ci.ref_frames = motion.defined() ? at::cat({ref, motion}, 0) : ref;  // [1 + m, 3, H, W]
    if (has_audio) ci.audio_windows = windows.narrow(0, k * F, F).unsqueeze(0).to(opts);  // [1, F, 2r+1, L, D]
    if (!in.init_noise.empty()) {
      ci.init_latents = dev(in.init_noise[static_cast<size_t>(k)]);
    } else {
      ci.init_latents = dev(at::randn({1, C, F, H / down, W / down}, gen));
    }
    if (s_.clip.motion_noise_timestep >= 0 && s_.motion_frames > 0)
      ci.motion_noise = dev(at::randn({s_.motion_frames, C, H / down, W / down}, gen));
    model::ClipSettings cs = s_.clip;
    cs.progress_label = clips > 1 ? fmt::format("clip {}/{}", k + 1, clips) : s_.clip.progress_label;
    model::ClipRecord clip_rec;
    const at::Tensor video = model::animate_clip(net_, vae_, scheduler, ci, cs, record ? &clip_rec : nullptr);
    if (record)
      for (auto& [name, v] : clip_rec) (*record)[fmt::format("clip{}.{}", k, name)] = v;
    previous = video[0].permute({1, 0, 2, 3});  // [F, 3, H, W]
    videos.push_back(previous.to(at::kCPU, at::kFloat));
  }
  return at::cat(videos, 0).narrow(0, 0, frames).contiguous();
}

}  // namespace hallo::inference
