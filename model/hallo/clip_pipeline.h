#pragma once
// The denoising loop of upstream FaceAnimatePipeline for ONE clip: VAE posterior
// mean of [ref, motion frames] -> ReferenceNet write (once per clip) -> CFG batch
// [uncond, cond] (uncond = imageproj(0), no reference attention, zero face-locator
// feature, zero audio tokens) -> DDIM -> VAE decode per frame to [0, 1].
// inference/animator chains clips over long audio on top of this; `hallo animate`,
// training validation and the pipeline golden all go through that one path.
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
  at::Tensor motion_noise;      // [n_motion, 4, H/8, W/8]: noise for the motion-frame latents
                                // (used when ClipSettings::motion_noise_timestep >= 0)
};

struct ClipSettings {
  int num_inference_steps = 40;
  double guidance_scale = 3.5;  // > 1 enables CFG (upstream: one batched [uncond, cond] pass)
  double eta = 0.0;
  // Separate guidance (paper Table 6) when both are >= 0: the [uncond, full] pass plus an
  // [uncond, image] pass ("image" = reference, face embedding and face locator, audio
  // zeroed; same batch layout, see clip_pipeline.cpp), guided as
  //   uncond + image_scale * (image - uncond) + audio_scale * (full - image),
  // which equals single CFG when both scales are equal.
  double audio_guidance_scale = -1;
  double image_guidance_scale = -1;
  // Hallo2-style: the motion-frame latents are noised to this training timestep
  // (scheduler add_noise) before the reference net reads them; < 0: off (Hallo).
  int motion_noise_timestep = -1;
  std::string progress_label = "denoise";  // the per-step progress bar's label

  bool separate_guidance() const { return audio_guidance_scale >= 0 && image_guidance_scale >= 0; }
};

// Recorded intermediates (upstream's names, for debugging against rec.* goldens).
using ClipRecord = std::map<std::string, at::Tensor>;

// -> videos [1, 3, F, H, W] in [0, 1]
at::Tensor animate_clip(HalloNet& net, AutoencoderKL& vae, sched::DDIMScheduler& scheduler, const ClipInputs& in,
                        const ClipSettings& settings, ClipRecord* record = nullptr);

}  // namespace hallo::model
