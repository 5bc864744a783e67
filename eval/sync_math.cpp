#include "eval/sync_math.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "eval/mfcc.h"

// SyncNetInstance.evaluate of syncnet_python, with the same torch ops in the same
// order (pairwise_distance per frame, stack, mean, min, median) so float32 results
// match the reference bit for bit where torch is deterministic.
namespace hallo::eval {

namespace {

constexpr int64_t kFramesPerWindow = 5;    // video frames per lip window
constexpr int64_t kMfccPerFrame = 4;       // 100 Hz MFCC / 25 fps
constexpr int64_t kMfccPerWindow = 20;     // 0.2 s of MFCC columns
constexpr int64_t kSamplesPerFrame = 640;  // 16 kHz / 25 fps

// calc_pdist: dists[i][j] = ||v_i - a_(i+j-vshift) + 1e-6||, audio rows outside [0,N)
// being zeros (feat2 padded by vshift rows at both ends).  -> N tensors of [2*vshift+1]
std::vector<at::Tensor> calc_pdist(const at::Tensor& feat1, const at::Tensor& feat2, int vshift) {
  const int64_t win = 2 * vshift + 1;
  const at::Tensor feat2p = at::constant_pad_nd(feat2, {0, 0, vshift, vshift});  // [N+2v, D]
  std::vector<at::Tensor> dists;
  dists.reserve(feat1.size(0));
  for (int64_t i = 0; i < feat1.size(0); ++i)
    dists.push_back(at::pairwise_distance(feat1.slice(0, i, i + 1).repeat({win, 1}), feat2p.slice(0, i, i + win)));
  return dists;
}

// The float32 framewise confidences through the one median filter (medians are
// elements, so filtering in double returns the same float32 values).
at::Tensor medfilt_f32(const at::Tensor& x, int k) {
  const at::Tensor xd = x.to(at::kDouble).contiguous();
  const std::vector<double> v(xd.data_ptr<double>(), xd.data_ptr<double>() + xd.numel());
  const std::vector<double> m = hallo::eval::medfilt_zero_padded(v, k);
  return at::tensor(m, at::kDouble).to(at::kFloat);
}

// Window v: frames [v, v+5) of imtv [1,3,T,H,W] for the listed v.  -> [b,3,5,H,W]
at::Tensor video_windows(const at::Tensor& imtv, int64_t first, int64_t last) {
  std::vector<at::Tensor> w;
  for (int64_t v = first; v < last; ++v) w.push_back(imtv.slice(2, v, v + kFramesPerWindow));
  return at::cat(w, 0);
}

// Window v: MFCC columns [4v, 4v+20) of cct [1,1,13,Tm].  -> [b,1,13,20]
at::Tensor audio_windows(const at::Tensor& cct, int64_t first, int64_t last) {
  std::vector<at::Tensor> w;
  for (int64_t v = first; v < last; ++v) w.push_back(cct.slice(3, v * kMfccPerFrame, v * kMfccPerFrame + kMfccPerWindow));
  return at::cat(w, 0);
}

}  // namespace

std::vector<double> medfilt_zero_padded(const std::vector<double>& x, int k) {
  const int64_t n = static_cast<int64_t>(x.size()), half = k / 2;
  std::vector<double> out(n), w(k);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = -half; j <= half; ++j) w[j + half] = (i + j >= 0 && i + j < n) ? x[i + j] : 0.0;
    std::nth_element(w.begin(), w.begin() + half, w.end());
    out[i] = w[half];
  }
  return out;
}

SyncOffsets sync_offsets(const at::Tensor& video_emb, const at::Tensor& audio_emb, int vshift) {
  if (video_emb.dim() != 2 || video_emb.sizes() != audio_emb.sizes() || video_emb.size(0) == 0)
    fail("sync_offsets: video and audio embeddings must be the same non-empty [N,D], got {} and {}",
         c10::str(video_emb.sizes()), c10::str(audio_emb.sizes()));
  const at::Tensor v = video_emb.detach().to(at::kCPU, at::kFloat);
  const at::Tensor a = audio_emb.detach().to(at::kCPU, at::kFloat);
  const std::vector<at::Tensor> dists = calc_pdist(v, a, vshift);

  SyncOffsets r;
  r.dists_per_frame = at::stack(dists, 0);        // [N, 31]
  r.dists = at::mean(at::stack(dists, 1), 1);     // [31]
  const auto [minval, minidx] = at::min(r.dists, 0);
  r.min_dist = minval.item<float>();
  r.min_idx = minidx.item<int64_t>();
  r.offset = vshift - r.min_idx;
  const at::Tensor median = at::median(r.dists);  // lower middle for an even count
  r.conf = (median - minval).item<float>();
  r.fdist = r.dists_per_frame.select(1, r.min_idx).contiguous();  // [N]
  r.fconf = median - r.fdist;                                     // [N]
  r.fconfm = medfilt_f32(r.fconf, 9);                            // [N]
  return r;
}

SyncEvaluation syncnet_evaluate(nets::SyncNetImpl& net, const at::Tensor& frames_bgr_u8, const at::Tensor& audio_i16,
                                const std::string& where, int batch_size, int vshift) {
  if (frames_bgr_u8.dim() != 4 || frames_bgr_u8.size(3) != 3)
    fail_at(where, "expected BGR frames [T,H,W,3], got {}", c10::str(frames_bgr_u8.sizes()));
  if (batch_size <= 0) fail_at(where, "SyncNet batch size {} must be positive", batch_size);
  if (audio_i16.dim() != 1) fail_at(where, "expected mono audio [S], got {}", c10::str(audio_i16.sizes()));
  const int64_t nframes = frames_bgr_u8.size(0), nsamples = audio_i16.size(0);
  // Upstream's lastframe is one window short of what the inputs allow; kept for equal numbers.
  const int64_t lastframe = std::min(nframes, nsamples / kSamplesPerFrame) - kFramesPerWindow;
  if (lastframe <= 0)
    fail_at(where, "too short for SyncNet: {} frames and {} audio samples ({} s); needs at least 6 frames (0.24 s)",
            nframes, nsamples, nsamples / 16000.0);

  torch::NoGradGuard no_grad;
  net.eval();
  const at::Tensor imtv = frames_bgr_u8.to(at::kFloat).permute({3, 0, 1, 2}).unsqueeze(0);  // [1,3,T,H,W]
  const at::Tensor cct = syncnet_mfcc(audio_i16);                                        // [1,1,13,Tm]

  // Windows go to wherever the net lives; embeddings come back to the CPU.
  const auto params = net.parameters();
  const at::Device dev = params.empty() ? at::Device(at::kCPU) : params.front().device();
  std::vector<at::Tensor> im_feat, cc_feat;
  for (int64_t i = 0; i < lastframe; i += batch_size) {
    const int64_t end = std::min(lastframe, i + batch_size);
    im_feat.push_back(net.forward_lip(video_windows(imtv, i, end).to(dev)).cpu());  // [b,1024]
    cc_feat.push_back(net.forward_aud(audio_windows(cct, i, end).to(dev)).cpu());   // [b,1024]
  }
  SyncEvaluation e;
  e.video_emb = at::cat(im_feat, 0);
  e.audio_emb = at::cat(cc_feat, 0);
  e.offsets = sync_offsets(e.video_emb, e.audio_emb, vshift);
  return e;
}

}  // namespace hallo::eval
