// Sync-C / Sync-D goldens (syncnet_python 6efbb1c, python_speech_features 0.6.1):
//   mfcc:              in.signal -> out.mfcc (F64), out.cct (F32 [1,1,13,T]), hook.* intermediates;
//   syncnet_eval_math: in.video_emb_seq / in.audio_emb_seq -> the offset arithmetic;
//   syncnet:           the towers on in.video_windows / in.mfcc_windows, and the whole
//                      evaluate on in.video_frames_seq (BGR u8) + in.audio_seq (I16).
#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "eval/mfcc.h"
#include "eval/nets/syncnet.h"
#include "eval/sync_math.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

namespace {

// The out.* tensors syncnet_python's offset arithmetic yields (dtypes as recorded).
void put_offsets(const eval::SyncOffsets& s, Outputs& o) {
  o["out.dists_per_frame"] = s.dists_per_frame;
  o["out.dists"] = s.dists;
  o["out.min_dist"] = at::scalar_tensor(s.min_dist, at::kFloat);
  o["out.min_idx"] = at::scalar_tensor(s.min_idx, at::kLong);
  o["out.offset"] = at::scalar_tensor(s.offset, at::kLong);
  o["out.conf"] = at::scalar_tensor(s.conf, at::kFloat);
  o["out.fdist"] = s.fdist;
  o["out.fconf"] = s.fconf;
  o["out.fconfm"] = s.fconfm;
}

int vshift_of(const GoldenCase& c) { return c.config.value("vshift", 15); }

}  // namespace

Outputs run_mfcc(const GoldenCase& c) {
  eval::MfccOptions opt;
  opt.sample_rate = c.config.value("samplerate", 16000);
  opt.winlen = c.config.value("winlen", 0.025);
  opt.winstep = c.config.value("winstep", 0.01);
  opt.numcep = c.config.value("numcep", 13);
  opt.nfilt = c.config.value("nfilt", 26);
  opt.nfft = c.config.value("nfft", 512);
  opt.lowfreq = c.config.value("lowfreq", 0.0);
  opt.highfreq = c.config.value("highfreq", -1.0);
  opt.preemph = c.config.value("preemph", 0.97);
  opt.ceplifter = c.config.value("ceplifter", 22);
  opt.append_energy = c.config.value("appendEnergy", true);

  eval::MfccHooks h;
  const at::Tensor feat = eval::mfcc(c.input("in.signal"), opt, c.want_hooks ? &h : nullptr);  // [T,13] F64
  Outputs o{{"out.mfcc", feat}, {"out.cct", feat.t().to(at::kFloat).contiguous().unsqueeze(0).unsqueeze(0)}};
  if (c.want_hooks) {
    o["hook.preemphasis"] = h.preemphasis;
    o["hook.frames"] = h.frames;
    o["hook.powspec"] = h.powspec;
    o["hook.filterbanks"] = h.filterbanks;
    o["hook.fbank"] = h.fbank;
    o["hook.energy"] = h.energy;
    o["hook.lifter"] = h.lifter;
  }
  return o;
}

Outputs run_syncnet_eval_math(const GoldenCase& c) {
  Outputs o;
  put_offsets(eval::sync_offsets(c.input("in.video_emb_seq"), c.input("in.audio_emb_seq"), vshift_of(c)), o);
  return o;
}

Outputs run_syncnet(const GoldenCase& c) {
  const std::string where = (c.dir / (c.name + ".config.json")).string();
  eval::nets::SyncNet net = eval::nets::load_syncnet(c.metric_weights(), where);
  torch::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> hooks;
  auto* hp = c.want_hooks ? &hooks : nullptr;

  // The towers on the recorded windows.
  const at::Tensor& vw = c.input("in.video_windows");  // [N,3,5,224,224]
  Outputs o;
  o["out.video_emb"] = net->forward_lip(vw, hp);
  o["out.audio_emb"] = net->forward_aud(c.input("in.mfcc_windows"), hp);
  o["out.video_lipfeat"] = net->forward_lipfeat(vw);
  for (auto& [k, v] : hooks) o["hook." + k] = v;

  // The whole evaluate: MFCC, 5-frame / 20-column windows in batches of 20, offsets.
  // The harness ran evaluate with opt.batch_size = 20, opt.vshift = 15.
  const auto e = eval::syncnet_evaluate(*net, c.input("in.video_frames_seq"), c.input("in.audio_seq"), where,
                                        /*batch_size=*/20, vshift_of(c));
  o["out.video_emb_seq"] = e.video_emb;
  o["out.audio_emb_seq"] = e.audio_emb;
  put_offsets(e.offsets, o);
  return o;
}

}  // namespace hallo::golden
