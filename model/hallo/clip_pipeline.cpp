#include "model/hallo/clip_pipeline.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "core/progress.h"

namespace hallo::model {

at::Tensor animate_clip(HalloNet& net, AutoencoderKL& vae, sched::DDIMScheduler& scheduler, const ClipInputs& in,
                        const ClipSettings& s, ClipRecord* record) {
  torch::NoGradGuard no_grad;
  auto rec = [&](const std::string& k, const at::Tensor& v) {
    if (record) (*record)[k] = v;
  };
  // Guidance batch: 1 (none) or [uncond, cond]; the uncond sample ignores the reference.
  // Separate guidance runs a second [uncond, image] pass with the audio zeroed rather
  // than one [uncond, image, full] batch: upstream's reference tiling (row k reads
  // sample k % B) makes what a frame reads depend on the batch size, and two passes
  // of the same layout keep "equal scales = single CFG" exact.
  const bool separate = s.separate_guidance();
  const bool cfg = separate || s.guidance_scale > 1.0;
  const int64_t batch = cfg ? 2 : 1;
  const int64_t frames = in.init_latents.size(2);
  const double scale = vae->config().scaling_factor;

  // Audio tokens: [1, F, T, D]; uncond = zeros. Stage-1 nets have no audio path.
  at::Tensor audio;
  if (net->audioproj) {
    audio = net->audioproj->forward(in.audio_windows);
    rec("audioproj_output", audio);
    if (audio.size(1) != frames) fail("animate_clip: {} audio frames for a clip of {} frames", audio.size(1), frames);
  }

  // Face tokens: uncond = imageproj(zeros), which is not zero (LayerNorm of the bias).
  at::Tensor cond_tokens = net->imageproj->forward(in.face_emb);
  at::Tensor uncond_tokens = net->imageproj->forward(at::zeros_like(in.face_emb));
  rec("imageproj_cond", cond_tokens);
  rec("imageproj_uncond", uncond_tokens);
  const at::Tensor context = cfg ? at::cat({uncond_tokens, cond_tokens}, 0) : cond_tokens;  // [batch, 4, D]

  // Reference latents: posterior MEAN of [ref, motion...] in [-1, 1], scaled.
  // diffusers' VaeImageProcessor: inputs with negative values are taken as already in [-1, 1].
  const bool normalised = in.ref_frames.min().item<double>() < 0;
  const at::Tensor ref_pixels = normalised ? in.ref_frames : in.ref_frames * 2.0 - 1.0;  // [S, 3, H, W]
  rec("vae_encode_input", ref_pixels);
  at::Tensor ref_latents = vae->encode(ref_pixels).mean;
  rec("vae_latent_mean", ref_latents);

  // Face locator on the face mask repeated over frames; uncond = zeros of its output.
  const at::Tensor face_video = in.face_region.unsqueeze(2).expand({-1, -1, frames, -1, -1}).contiguous();  // [1, 3, F, H, W]
  rec("face_locator_input", face_video);
  at::Tensor face_feature = net->face_locator->forward(face_video);  // [1, C0, F, h, w]
  rec("face_locator_output", face_feature);
  if (cfg) {
    std::vector<at::Tensor> parts(static_cast<size_t>(batch), face_feature);
    parts[0] = at::zeros_like(face_feature);
    face_feature = at::cat(parts, 0);
  }

  AudioMasks masks = in.masks;
  if (cfg)
    for (auto* level : {&masks.full, &masks.face, &masks.lip})
      for (auto& m : *level) m = m.repeat({batch, 1});
  at::Tensor no_audio;  // the [uncond, image] pass of separate guidance
  if (cfg && audio.defined()) {
    no_audio = at::zeros_like(audio).repeat({2, 1, 1, 1});
    audio = at::cat({at::zeros_like(audio), audio}, 0);
  }

  scheduler.set_timesteps(s.num_inference_steps);
  const at::Tensor timesteps = scheduler.timesteps();
  at::Tensor latents = in.init_latents * scheduler.init_noise_sigma();

  // Hallo2: noisy motion frames, so the model leans less on its own previous output.
  at::Tensor ref_scaled = ref_latents.mul(scale);  // [S, 4, h, w]
  if (s.motion_noise_timestep >= 0 && ref_scaled.size(0) > 1) {
    const int64_t m = ref_scaled.size(0) - 1;
    if (!in.motion_noise.defined() || in.motion_noise.size(0) != m)
      fail("animate_clip: motion_noise_timestep needs motion_noise [{}, C, h, w]", m);
    const auto noisy = scheduler.schedule().add_noise(ref_scaled.narrow(0, 1, m), in.motion_noise,
                                                      at::full({m}, s.motion_noise_timestep, at::kLong));
    ref_scaled = at::cat({ref_scaled.narrow(0, 0, 1), noisy}, 0);
  }

  // ReferenceNet once per clip at t = 0; its bank is handed to the denoiser,
  // paired block by block and cast as upstream does (float16 by default).
  const at::Tensor ref_batch = ref_scaled.repeat({batch, 1, 1, 1});  // [batch*S, 4, h, w]
  rec("reference_unet.sample", ref_batch);
  ReferenceBank written;
  const at::Tensor ref_ctx = context.repeat({ref_batch.size(0) / context.size(0), 1, 1});  // upstream's tiling quirk
  net->reference_unet->forward(ref_batch, at::zeros({}, at::kLong), ref_ctx, nullptr, &written);
  const auto pairs = ReferenceBank::pair_blocks(net->reference_unet->transformer_blocks(),
                                                net->denoising_unet->transformer_blocks());
  const ReferenceBank bank = written.remapped(pairs).to(net->denoising_unet->config().bank_dtype);
  for (const auto& k : bank.order()) rec("bank." + k, bank.get(k));

  ProgressBar bar(s.progress_label, static_cast<uint64_t>(timesteps.size(0)), " steps");
  for (int64_t i = 0; i < timesteps.size(0); ++i) {
    const int64_t t = timesteps[i].item<int64_t>();
    const std::string step = "step" + std::to_string(i) + ".";
    at::Tensor model_in = cfg ? latents.repeat({batch, 1, 1, 1, 1}) : latents;  // [batch, 4, F, h, w]
    model_in = scheduler.scale_model_input(model_in, t);
    rec(step + "latent_model_input", model_in);
    const auto tt = at::scalar_tensor(t, at::kLong);
    at::Tensor pred = net->denoising_unet->forward(model_in, tt, context, face_feature, masks, audio, in.motion_scale,
                                                   &bank, nullptr, cfg ? 1 : 0);
    if (separate) {
      const at::Tensor image = net->denoising_unet->forward(model_in, tt, context, face_feature, masks, no_audio,
                                                            in.motion_scale, &bank, nullptr, 1).narrow(0, 1, 1);
      pred = at::cat({pred.narrow(0, 0, 1), image, pred.narrow(0, 1, 1)}, 0);  // uncond, image, full
    }
    rec(step + "noise_pred_cfg_batch", pred);
    if (separate) {
      auto p = pred.chunk(3, 0);
      pred = p[0] + s.image_guidance_scale * (p[1] - p[0]) + s.audio_guidance_scale * (p[2] - p[1]);
    } else if (cfg) {
      auto parts = pred.chunk(2, 0);
      pred = parts[0] + s.guidance_scale * (parts[1] - parts[0]);
    }
    rec(step + "guided_model_output", pred);
    latents = scheduler.step(pred, t, latents, s.eta).prev_sample;
    rec(step + "prev_sample", latents);
    bar.advance();
  }
  bar.finish();

  // Decode frame by frame (bounded memory), then [-1, 1] -> [0, 1].
  const at::Tensor z = (latents / scale).permute({0, 2, 1, 3, 4}).flatten(0, 1);  // [F, 4, h, w]
  rec("final_latents_scaled", z);
  std::vector<at::Tensor> decoded;
  for (int64_t f = 0; f < z.size(0); ++f) decoded.push_back(vae->decode(z.narrow(0, f, 1)));
  at::Tensor video = at::cat(decoded, 0);  // [F, 3, H, W]
  video = (video / 2 + 0.5).clamp(0, 1);
  return video.unsqueeze(0).permute({0, 2, 1, 3, 4}).contiguous();  // [1, 3, F, H, W]
}

}  // namespace hallo::model
