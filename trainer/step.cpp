#include "trainer/step.h"

#include <optional>

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>

#include "core/error.h"
#include "model/nn/autocast.h"

namespace hallo::trainer {

namespace {

void put(StepRecord* rec, const std::string& k, const at::Tensor& v) {
  if (rec) (*rec)[k] = v.detach();
}

// VAE posterior of frames [N, 3, H, W] in [-1, 1], encoded `chunk` frames at a time.
std::pair<at::Tensor, at::Tensor> encode(model::AutoencoderKL& vae, const at::Tensor& pixels, int chunk) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> means, stds;
  const int64_t n = pixels.size(0), step = std::max<int64_t>(1, chunk);
  // A VAE stored in bf16 / fp16 (solver.frozen_dtype) encodes in its dtype; the posterior
  // is float32 either way.
  const c10::ScalarType dt = vae->parameters().front().scalar_type();
  for (int64_t i = 0; i < n; i += step) {
    const auto post = vae->encode(pixels.narrow(0, i, std::min(step, n - i)).to(dt));
    means.push_back(post.mean.to(at::kFloat));
    stds.push_back(post.std().to(at::kFloat));
  }
  return {at::cat(means, 0), at::cat(stds, 0)};
}

at::Tensor flatten2(const at::Tensor& t) { return t.flatten(0, 1); }  // [B, F, ...] -> [B*F, ...]

}  // namespace

StepSettings step_settings(const TrainConfig& c) {
  StepSettings s;
  s.stage = c.stage;
  s.quirks = c.effective_quirks();
  s.noise_offset = c.noise_offset;
  s.loss.snr_gamma = c.snr_gamma;
  s.loss.v_prediction = c.train_scheduler().prediction_type == sched::PredictionType::VPrediction;
  s.loss.average_before_weighting = s.quirks.average_mse_before_snr_weighting;
  s.autocast = nn::mixed_precision_dtype(c.solver.mixed_precision.c_str());
  return s;
}

void apply_quirks(model::HalloNet& net, const QuirkConfig& q, int n_motion_frames) {
  auto& c = net->denoising_unet->mutable_config();
  c.skip_motion_in_plain_blocks = q.skip_motion_in_plain_blocks;
  c.tile_reference_rows = q.tile_reference_rows;
  c.zero_motion_frames = q.four_zero_motion_frames ? 4 : n_motion_frames;
  c.bank_dtype = q.bank_float16 ? at::kHalf : at::kFloat;
}

Latents sample_latents(StepModels& m, const StepSettings& s, const TrainBatch& b, const StepDraws& d,
                       const StepDecisions& dec, StepRecord* rec) {
  const int64_t B = b.batch(), F = b.frames(), S = b.ref_frames();
  const double scale = m.latent_scale;
  Latents out;

  // Targets: posterior sample (mean + std * eps) * scale, as upstream's latent_dist.sample().
  at::Tensor mean, std;
  if (b.target_mean.defined()) {
    mean = flatten2(b.target_mean);
    std = flatten2(b.target_std);
  } else {
    if (!m.vae) fail("training batch has neither target latents nor a VAE to encode its pixels");
    std::tie(mean, std) = encode(m.vae, flatten2(b.target_pixels), s.vae_chunk);
  }
  if (d.latent_eps.sizes() != mean.sizes())
    fail("target posterior noise {} does not match the latents {}", c10::str(d.latent_eps.sizes()), c10::str(mean.sizes()));
  put(rec, "latent_dist_mean", mean);
  put(rec, "latent_dist_std", std);
  const at::Tensor z = (mean + std * d.latent_eps) * scale;  // [B*F, C, h, w]
  out.target = z.view({B, F, z.size(1), z.size(2), z.size(3)}).permute({0, 2, 1, 3, 4});  // [B, C, F, h, w]
  put(rec, "latents", out.target);

  // References [ref, motion...]: start_frame zeroes the motion frames' pixels first.
  const bool zero_motion = s.stage == 2 && dec.start_frame && S > 1;
  at::Tensor rmean, rstd;
  if (b.ref_mean.defined()) {
    rmean = b.ref_mean;
    rstd = b.ref_std;
    if (zero_motion) {
      if (!m.zero_frame_mean.defined())
        fail("start_frame needs the posterior of a zeroed frame (a VAE) when latents come from the shards");
      rmean = rmean.clone();
      rstd = rstd.clone();
      rmean.narrow(1, 1, S - 1).copy_(m.zero_frame_mean.expand_as(rmean.narrow(1, 1, S - 1)));
      rstd.narrow(1, 1, S - 1).copy_(m.zero_frame_std.expand_as(rstd.narrow(1, 1, S - 1)));
    }
    rmean = flatten2(rmean);
    rstd = flatten2(rstd);
  } else {
    if (!m.vae) fail("training batch has neither reference latents nor a VAE to encode its pixels");
    at::Tensor px = b.ref_pixels;
    if (zero_motion) {
      px = px.clone();
      px.narrow(1, 1, S - 1).zero_();  // upstream: pixel_values_ref_img[:, 1:] = 0.0
    }
    std::tie(rmean, rstd) = encode(m.vae, flatten2(px), s.vae_chunk);
  }
  if (d.ref_latent_eps.sizes() != rmean.sizes())
    fail("reference posterior noise {} does not match the latents {}", c10::str(d.ref_latent_eps.sizes()),
         c10::str(rmean.sizes()));
  put(rec, "ref_latent_dist_mean", rmean);
  put(rec, "ref_latent_dist_std", rstd);
  out.ref = (rmean + rstd * d.ref_latent_eps) * scale;  // [B*S, C, h, w]
  put(rec, "ref_image_latents", out.ref);
  return out;
}

ForwardResult forward_loss(StepModels& m, const StepSettings& s, const TrainBatch& b, const StepDraws& d,
                           const StepDecisions& dec, StepRecord* rec) {
  auto& net = m.net;
  const int64_t B = b.batch(), F = b.frames(), S = b.ref_frames();
  if (s.stage == 2 && !b.audio.defined()) fail("stage 2 batch has no audio features");

  const Latents lat = sample_latents(m, s, b, d, dec, rec);
  const at::Tensor noise = losses::offset_noise(d.noise_base, d.noise_offset, s.noise_offset);  // [B, C, F, h, w]
  const at::Tensor& t = d.timesteps;
  const at::Tensor noisy = m.schedule.add_noise(lat.target, noise, t);
  const bool v_pred = m.schedule.config().prediction_type == sched::PredictionType::VPrediction;
  if (!v_pred && m.schedule.config().prediction_type != sched::PredictionType::Epsilon)
    fail("training supports epsilon and v_prediction targets only");
  const at::Tensor target = v_pred ? m.schedule.get_velocity(lat.target, noise, t) : noise;
  put(rec, "noise", noise);
  put(rec, "noisy_latents", noisy);
  put(rec, "target", target);
  put(rec, "train_alphas_cumprod", m.schedule.alphas_cumprod());

  // The networks under autocast when mixed precision is on (float32 master weights;
  // the VAE posterior sample and the loss stay float32).
  std::optional<nn::AutocastGuard> autocast;
  if (s.autocast != at::kFloat) autocast.emplace(noisy.device().type(), s.autocast);

  // Conditions.
  const bool drop_face = s.stage == 1 && dec.uncond_fwd;
  const at::Tensor face_in = drop_face ? at::zeros_like(b.face_emb) : b.face_emb;
  put(rec, "imageproj_in", face_in);
  const at::Tensor tokens = net->imageproj->forward(face_in);  // [B, 4, D]
  put(rec, "imageproj_out", tokens);
  const at::Tensor face_video = b.face_region.unsqueeze(2).expand({-1, -1, F, -1, -1}).contiguous();  // [B, 3, F, H, W]
  const at::Tensor face_feature = net->face_locator->forward(face_video);                             // [B, C0, F, h, w]
  put(rec, "face_locator_out", face_feature);
  at::Tensor audio;
  if (s.stage == 2) {
    audio = net->audioproj->forward(b.audio);  // [B, F, T, D]
    put(rec, "audioproj_out", audio);
  }

  // Reference net (write) unless the image condition is dropped.
  const bool use_reference = s.stage == 1 ? !dec.uncond_fwd : !dec.uncond_img;
  model::ReferenceBank bank;
  if (use_reference) {
    // Upstream tiles the face tokens over the [ref, motion...] rows (repeat); the fix
    // gives every row its own sample's tokens.
    const at::Tensor ref_ctx = s.quirks.tile_reference_context ? tokens.repeat({S, 1, 1})
                                                               : tokens.repeat_interleave(S, 0);  // [B*S, 4, D]
    const at::Tensor ref_t = at::zeros({B * S}, t.options());
    put(rec, "reference_unet.sample", lat.ref);
    put(rec, "reference_unet.timestep", ref_t);
    put(rec, "reference_unet.encoder_hidden_states", tokens);
    model::ReferenceBank written;
    net->reference_unet->forward(lat.ref, ref_t, ref_ctx, nullptr, &written);
    const auto pairs = model::ReferenceBank::pair_blocks(net->reference_unet->transformer_blocks(),
                                                         net->denoising_unet->transformer_blocks());
    // The cast keeps gradients (stage 1 trains the reference net through it).
    bank = written.remapped(pairs).to(net->denoising_unet->config().bank_dtype);
    if (rec)
      for (const auto& k : bank.order()) put(rec, "bank." + k, bank.get(k));
  }
  if (s.stage == 2 && dec.uncond_audio) audio = at::zeros_like(audio).detach();  // no gradient, as upstream

  model::AudioMasks masks;
  if (s.stage == 2) {
    for (int l = 0; l < kMaskLevels; ++l) {
      auto flat = [&](const at::Tensor& m5) { return m5.reshape({B * F, -1}).to(noisy.scalar_type()); };  // (b f) (h w)
      masks.full.push_back(flat(b.full_mask[l]));
      masks.face.push_back(flat(b.face_mask[l]));
      masks.lip.push_back(flat(b.lip_mask[l]));
      put(rec, "denoising_unet.full_mask." + std::to_string(l), masks.full.back());
      put(rec, "denoising_unet.face_mask." + std::to_string(l), masks.face.back());
      put(rec, "denoising_unet.lip_mask." + std::to_string(l), masks.lip.back());
    }
    put(rec, "denoising_unet.audio_embedding", audio);
  }
  put(rec, "denoising_unet.sample", noisy);
  put(rec, "denoising_unet.timestep", t);
  put(rec, "denoising_unet.encoder_hidden_states", tokens);
  const at::Tensor pred = net->denoising_unet->forward(noisy, t, tokens, face_feature, masks, audio, at::Tensor(),
                                                       use_reference ? &bank : nullptr, nullptr, /*uncond_samples=*/0);
  put(rec, "model_pred", pred);
  autocast.reset();

  ForwardResult r;
  const at::Tensor snr = m.schedule.snr(t);
  r.terms = losses::diffusion_loss(pred, target, snr, s.loss);
  r.timesteps = t;
  put(rec, "snr", s.loss.v_prediction ? snr + 1 : snr);
  put(rec, "mse_loss_weights", r.terms.weights);
  return r;
}

StepReport optimization_step(StepModels& m, const StepSettings& s, Optimization& o, const std::vector<MicroBatch>& micro,
                             double lr, GradientObserver* observer, StepRecord* rec) {
  if (micro.empty()) fail("optimization step without a batch");
  auto& params = o.trainable->params();
  StepReport report;
  report.lr = lr;
  o.trainable->zero_grad();
  const double ga = static_cast<double>(micro.size());
  const double scale = o.scaler ? o.scaler->scale() : 1.0;
  report.loss_scale = scale;
  bool loss_finite = true;
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
  for (size_t i = 0; i < micro.size(); ++i) {
    const auto& mb = micro[i];
    o.reducer->begin_backward(i + 1 == micro.size());
    const auto t0 = clock::now();
    ForwardResult r = forward_loss(m, s, mb.batch, mb.draws, mb.decisions, i == 0 ? rec : nullptr);
    const double loss = r.terms.loss.item<double>();
    loss_finite &= std::isfinite(loss);
    report.loss += loss / ga;
    report.decisions.push_back(mb.decisions);
    for (int64_t k = 0; k < r.timesteps.size(0); ++k) {
      report.sample_losses.push_back(r.terms.per_sample[k].item<double>());
      report.sample_timesteps.push_back(r.timesteps[k].item<int64_t>());
    }
    // accelerate's backward: (loss / gradient_accumulation_steps).backward(), times the
    // loss scale under fp16. Every micro-step runs backward even when the loss is not
    // finite, so that ranks stay in step.
    report.forward_s += secs(t0);
    const auto t1 = clock::now();
    at::Tensor objective = micro.size() == 1 ? r.terms.loss : r.terms.loss / ga;
    if (scale != 1.0) objective = objective * scale;
    objective.backward();
    report.backward_s += secs(t1);
  }
  const auto t2 = clock::now();
  o.reducer->finish();
  if (o.reducer->world_size() > 1) {
    // The global loss; a non-finite loss on any rank makes it NaN everywhere, so every
    // rank skips the same steps.
    report.loss = o.reducer->mean(report.loss);
    loss_finite = std::isfinite(report.loss);
  }
  if (scale != 1.0) {
    // Unscale the reduced gradients (a power of two: exact) before anything reads them.
    at::NoGradGuard no_grad;
    for (auto& p : params)
      if (p.param.grad().defined()) p.param.mutable_grad().mul_(1.0 / scale);
  }
  if (observer) observer->on_gradients(*o.trainable);
  GradientReducer* sharded = o.reducer->shards_gradients() ? o.reducer : nullptr;
  if (sharded && (!o.owners || !o.owned))
    fail("optimization step: the gradients are sharded (ZeRO-2) but the step has no parameter owners");
  const ClipResult clip = clip_grad_norm(params, o.max_grad_norm, sharded);
  report.grad_norm = clip.total_norm;
  report.clip_coef = clip.coef;
  if (o.scaler) o.scaler->update(!loss_finite || !std::isfinite(clip.total_norm));
  if (!loss_finite || !std::isfinite(clip.total_norm)) {
    report.applied = false;
    report.nonfinite = !loss_finite ? "loss" : "gradients";
    report.overflow = loss_finite && scale != 1.0;
    report.nonfinite_param = first_nonfinite(params, sharded);
    o.trainable->zero_grad();
    return report;
  }
  o.optimizer->step(params, lr, o.owned);
  if (o.owners) o.reducer->broadcast_from_owners(params, *o.owners);
  o.trainable->zero_grad();
  report.update_s = secs(t2);
  return report;
}

}  // namespace hallo::trainer
