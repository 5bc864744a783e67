#pragma once
// How videos become I3D inputs for FVD. Two protocols:
//  disco   (default; the DisCo tool Hallo's published FVD comes from): the whole video
//          as one clip; every frame resized to 224x224 the clean-fid "PIL bicubic" way
//          (each channel a float image, antialiased bicubic, a = -0.5), clipped to
//          [0,255], x/127.5 - 1; I3D BN eps 1e-3, final average pool (1,7,7), logits
//          averaged over time: one 400-d feature per video.
//  clips16 (the TF original's clip length): every non-overlapping 16-frame clip, frames
//          resized straight to 224x224 with TF1 resize_bilinear (no half-pixel
//          centres), 2x/255 - 1; BN eps 1e-3, pool (2,7,7): one feature per clip.
// A TorchScript detector keeps its own BN eps and pooling (only the input is ours).
#include <ATen/core/Tensor.h>

#include <string>

#include "eval/nets/i3d.h"

namespace hallo::eval {

struct FvdProtocol {
  std::string name;     // disco | clips16
  nets::I3DOptions i3d;  // for state-dict detectors
  int clip_batch = 4;   // clips per I3D call (batching beyond this gains nothing on CPU)
  // Everything that changes the features, for the report and the real-set cache key.
  std::string settings() const;
};

// bn_eps: 1e-3 (TF / DisCo / piergiaj) or 1e-5 (VideoGPT's port). Throws on an unknown name.
FvdProtocol make_fvd_protocol(const std::string& name, double bn_eps = 1e-3);

// [N,H,W,3] uint8 RGB -> I3D clips [K,3,T,224,224] in [-1,1] (disco: K = 1, T = N).
at::Tensor fvd_clips(const at::Tensor& frames_u8, const FvdProtocol& p, const std::string& where);

// One video's FVD features [K,400] (float32).
at::Tensor fvd_features(nets::FvdDetector& detector, const at::Tensor& frames_u8, const FvdProtocol& p,
                        const std::string& where);

// [N,C,H,W] float on the 0..255 scale -> [N,C,size,size]: PIL Image.resize(BICUBIC) on mode
// 'F' channels (antialiased when shrinking), then clipped to [0,255] (clean-fid's resizer).
at::Tensor resize_pil_bicubic(const at::Tensor& x, int64_t size);
// [N,C,H,W] -> [N,C,h,w]: TF1 tf.image.resize_bilinear(align_corners=False): source
// coordinate = dst * in / out, no half-pixel offset.
at::Tensor resize_tf1_bilinear(const at::Tensor& x, int64_t h, int64_t w);

}  // namespace hallo::eval
