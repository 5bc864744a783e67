#pragma once
// Sync-C / Sync-D / AV offset exactly as syncnet_python's SyncNetInstance.evaluate
// computes them from the two embedding sequences, and the whole evaluate on decoded
// inputs (5-frame video windows and 20-column MFCC windows, batches of 20, its
// one-window-short `lastframe`).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "eval/nets/syncnet.h"

namespace hallo::eval {

struct SyncOffsets {
  at::Tensor dists_per_frame;  // F32 [N, 2*vshift+1]: ||v_i - a_(i+j-vshift) + 1e-6|| (zero rows outside)
  at::Tensor dists;            // F32 [2*vshift+1]: mean over frames
  float min_dist = 0;          // Sync-D
  int64_t min_idx = 0;
  int64_t offset = 0;          // vshift - min_idx; audio lagging video by k frames -> -k
  float conf = 0;              // Sync-C = median(dists) - min_dist (lower middle for even counts)
  at::Tensor fdist, fconf, fconfm;  // F32 [N]: framewise distance at min_idx, median - fdist, medfilt 9
};

// scipy.signal.medfilt(x, k), k odd: the median of the k values centred on each element
// with zeros beyond both ends (so the first and last k/2 values shrink towards the
// smaller neighbours). SyncNet's framewise confidence (k 9) and crop_video's box
// smoothing (k 13) both use it.
std::vector<double> medfilt_zero_padded(const std::vector<double>& x, int k);

// video_emb, audio_emb: [N,1024] (float32).
SyncOffsets sync_offsets(const at::Tensor& video_emb, const at::Tensor& audio_emb, int vshift = 15);

struct SyncEvaluation {
  at::Tensor video_emb, audio_emb;  // [N,1024]
  SyncOffsets offsets;
};

// frames_bgr_u8: [T,224,224,3] uint8 BGR face crops at 25 fps; audio_i16: [S] int16 at 16 kHz.
// Windows v = 0 .. min(T, floor(S/640)) - 6 (syncnet_python's lastframe); throws hallo::Error
// naming `where` when there is no window.
SyncEvaluation syncnet_evaluate(nets::SyncNetImpl& net, const at::Tensor& frames_bgr_u8, const at::Tensor& audio_i16,
                                const std::string& where, int batch_size = 20, int vshift = 15);

}  // namespace hallo::eval
