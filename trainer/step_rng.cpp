#include "trainer/step_rng.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <mutex>

#include "core/error.h"

namespace hallo::trainer {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

StepRng::StepRng(uint64_t seed, int rank)
    : gen_(at::make_generator<at::CPUGeneratorImpl>(splitmix64(seed ^ splitmix64(0x7472616eull + static_cast<uint64_t>(rank))))) {}

StepDraws StepRng::draw(const DrawShape& s) {
  // (the sampling ops lock the generator themselves)
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  StepDraws d;
  d.latent_eps = at::randn({s.batch * s.frames, s.channels, s.height, s.width}, gen_, f32);
  d.noise_base = at::randn({s.batch, s.channels, s.frames, s.height, s.width}, gen_, f32);
  d.noise_offset = at::randn({s.batch, s.channels, 1, 1, 1}, gen_, f32);
  d.timesteps = at::randint(0, s.num_train_timesteps, {s.batch}, gen_, at::TensorOptions().dtype(at::kLong));
  const at::Tensor u = at::rand({uniforms_per_step(s.stage)}, gen_, at::TensorOptions().dtype(at::kDouble));
  for (int64_t i = 0; i < u.numel(); ++i) d.uniforms.push_back(u[i].item<double>());
  d.ref_latent_eps = at::randn({s.batch * s.ref_frames, s.channels, s.height, s.width}, gen_, f32);
  return d;
}

at::Tensor StepRng::state() const {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  return gen_.get_state();
}

void StepRng::set_state(const at::Tensor& state) {
  std::lock_guard<std::mutex> lock(gen_.mutex());
  try {
    gen_.set_state(state);
  } catch (const std::exception& e) {
    fail("training RNG state: {}", e.what());
  }
}

int uniforms_per_step(int stage) { return stage == 1 ? 1 : 3; }

StepDecisions decide(int stage, const DropoutRatios& r, const std::vector<double>& u) {
  if (static_cast<int>(u.size()) < uniforms_per_step(stage))
    fail("condition dropout: stage {} needs {} draws, got {}", stage, uniforms_per_step(stage), u.size());
  StepDecisions d;
  if (stage == 1) {
    d.uncond_fwd = u[0] < r.uncond;
  } else {
    d.uncond_img = u[0] < r.uncond_img;
    d.uncond_audio = u[1] < r.uncond_audio;
    d.start_frame = u[2] < r.start;
  }
  return d;
}

namespace {
at::Tensor on(const at::Tensor& t, const c10::Device& d) { return t.defined() ? t.to(d) : t; }
}  // namespace

TrainBatch TrainBatch::to(const c10::Device& d) const {
  TrainBatch b = *this;
  for (at::Tensor* t : {&b.target_pixels, &b.target_mean, &b.target_std, &b.ref_pixels, &b.ref_mean, &b.ref_std,
                        &b.face_region, &b.face_emb, &b.audio})
    *t = on(*t, d);
  for (int l = 0; l < kMaskLevels; ++l) {
    b.full_mask[l] = on(b.full_mask[l], d);
    b.face_mask[l] = on(b.face_mask[l], d);
    b.lip_mask[l] = on(b.lip_mask[l], d);
  }
  return b;
}

StepDraws StepDraws::to(const c10::Device& d) const {
  StepDraws s = *this;
  for (at::Tensor* t : {&s.latent_eps, &s.noise_base, &s.noise_offset, &s.timesteps, &s.ref_latent_eps}) *t = on(*t, d);
  return s;
}

int64_t TrainBatch::batch() const {
  if (face_emb.defined()) return face_emb.size(0);
  return target_pixels.defined() ? target_pixels.size(0) : target_mean.size(0);
}

int64_t TrainBatch::frames() const { return target_pixels.defined() ? target_pixels.size(1) : target_mean.size(1); }

int64_t TrainBatch::ref_frames() const { return ref_pixels.defined() ? ref_pixels.size(1) : ref_mean.size(1); }

}  // namespace hallo::trainer
