#pragma once
// The denoising loop of upstream FaceAnimatePipeline for ONE clip: VAE posterior
// mean of [ref, motion frames] -> ReferenceNet write (once per clip) -> CFG batch
// [uncond, cond] (uncond = imageproj(0), no reference attention, zero face-locator
// feature, zero audio tokens) -> DDIM -> VAE decode per frame to [0, 1].
// Long-audio chaining, file I/O and the CLI build on this (later issue).
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "model/hallo/audio_attention.h"
#include "model/hallo/hallo_net.h"
#include "model/schedulers/ddim.h"
#include "model/vae/autoencoder_kl.h"

namespace hallo::model {

struct ClipInputs {
  at::Tensor ref_frames;        // [1 + n_motion, 3, H, W]: reference image, then motion frames; [-1, 1]
                                // (or [0, 1], normalised as diffusers' VaeImageProcessor does when min >= 0)
  at::Tensor face_emb;          // [1, 512] raw ArcFace embedding
  at::Tensor audio_windows;     // [1, F, window, layers, dim] wav2vec2 windows
  at::Tensor face_region;       // [1, 3, H, W] hard face-box mask (face locator input)
  AudioMasks masks;             // per level [F, h_l * w_l]: pose (full), face, lip
  at::Tensor motion_scale;      // [3]: pose, face, lip weights
  at::Tensor init_latents;      // [1, 4, F, H/8, W/8] initial noise (init_noise_sigma = 1)
};

struct ClipSettings {
  int num_inference_steps = 40;
  double guidance_scale = 3.5;  // > 1 enables CFG
  double eta = 0.0;
};

// Recorded intermediates (upstream's names, for debugging against rec.* goldens).
using ClipRecord = std::map<std::string, at::Tensor>;

// -> videos [1, 3, F, H, W] in [0, 1]
at::Tensor animate_clip(HalloNet& net, AutoencoderKL& vae, sched::DDIMScheduler& scheduler, const ClipInputs& in,
                        const ClipSettings& settings, ClipRecord* record = nullptr);

}  // namespace hallo::model
