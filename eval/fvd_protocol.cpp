#include "eval/fvd_protocol.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"

namespace hallo::eval {

namespace {

constexpr int64_t kSide = 224;
constexpr int64_t kClip = 16;
constexpr int64_t kResizeChunk = 16;  // frames resized at a time (bounds the float copies)

// Source index pairs and weights of TF1's legacy bilinear sampling along one axis.
void tf1_axis(int64_t in, int64_t out, at::Tensor* i0, at::Tensor* i1, at::Tensor* w) {
  const double scale = static_cast<double>(in) / out;
  std::vector<int64_t> a(out), b(out);
  std::vector<float> f(out);
  for (int64_t d = 0; d < out; ++d) {
    const double s = d * scale;
    a[d] = static_cast<int64_t>(std::floor(s));
    b[d] = std::min(a[d] + 1, in - 1);
    f[d] = static_cast<float>(s - a[d]);
  }
  *i0 = at::tensor(a, at::kLong);
  *i1 = at::tensor(b, at::kLong);
  *w = at::tensor(f, at::kFloat);
}

}  // namespace

std::string FvdProtocol::settings() const {
  const std::string pre = name == "disco" ? "whole-video,pil-bicubic-aa-224,clip0-255,x/127.5-1"
                                          : "clips16-nonoverlapping,tf1-bilinear-224,2x/255-1";
  return fmt::format("fvd:{}:{}:bn{:g}:pool{}x{}x{}:fps25", name, pre, i3d.bn_eps, i3d.final_pool[0], i3d.final_pool[1],
                     i3d.final_pool[2]);
}

FvdProtocol make_fvd_protocol(const std::string& name, double bn_eps) {
  FvdProtocol p;
  p.name = name;
  p.i3d.bn_eps = bn_eps;
  if (name == "disco") p.i3d.final_pool = {1, 7, 7};
  else if (name == "clips16") p.i3d.final_pool = {2, 7, 7};
  else fail("unknown FVD protocol '{}'; known: disco (DisCo's whole-video protocol, what Hallo used), clips16", name);
  return p;
}

at::Tensor resize_pil_bicubic(const at::Tensor& x, int64_t size) {
  // torch's antialiased bicubic is PIL's resampling (a = -0.5, support scaled by the
  // downscale factor, normalised weights); PIL's float mode does not round.
  return at::_upsample_bicubic2d_aa(x.to(at::kFloat), {size, size}, /*align_corners=*/false, c10::nullopt, c10::nullopt)
      .clamp(0, 255);
}

at::Tensor resize_tf1_bilinear(const at::Tensor& x, int64_t h, int64_t w) {
  at::Tensor y0, y1, wy, x0, x1, wx;
  tf1_axis(x.size(2), h, &y0, &y1, &wy);
  tf1_axis(x.size(3), w, &x0, &x1, &wx);
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor rows = xf.index_select(2, y0) * (1 - wy).view({1, 1, h, 1}) + xf.index_select(2, y1) * wy.view({1, 1, h, 1});
  return rows.index_select(3, x0) * (1 - wx).view({1, 1, 1, w}) + rows.index_select(3, x1) * wx.view({1, 1, 1, w});
}

at::Tensor fvd_clips(const at::Tensor& u8, const FvdProtocol& p, const std::string& where) {
  if (u8.dim() != 4 || u8.size(3) != 3) fail_at(where, "expected RGB frames [N,H,W,3], got {}", c10::str(u8.sizes()));
  const int64_t n = p.name == "disco" ? u8.size(0) : u8.size(0) / kClip * kClip;
  if (p.name == "clips16" && n == 0) fail_at(where, "has {} frames; FVD clips16 needs at least 16", u8.size(0));
  if (p.name == "disco" && n < 9) fail_at(where, "has {} frames; I3D needs a clip of at least 9", n);
  at::Tensor out = at::empty({n, 3, kSide, kSide}, at::kFloat);  // [N,3,224,224]
  for (int64_t i = 0; i < n; i += kResizeChunk) {
    const int64_t m = std::min(kResizeChunk, n - i);
    const at::Tensor x = u8.narrow(0, i, m).permute({0, 3, 1, 2}).to(at::kFloat);  // [m,3,H,W] 0..255
    if (p.name == "disco") out.narrow(0, i, m).copy_(resize_pil_bicubic(x, kSide) / 127.5 - 1.0);
    else out.narrow(0, i, m).copy_(resize_tf1_bilinear(x, kSide, kSide) * (2.0 / 255.0) - 1.0);
  }
  if (p.name == "disco") return out.permute({1, 0, 2, 3}).unsqueeze(0).contiguous();  // [1,3,N,224,224]
  return out.view({n / kClip, kClip, 3, kSide, kSide}).permute({0, 2, 1, 3, 4}).contiguous();  // [K,3,16,224,224]
}

at::Tensor fvd_features(nets::FvdDetector& detector, const at::Tensor& u8, const FvdProtocol& p, const std::string& where) {
  torch::NoGradGuard ng;
  const at::Tensor clips = fvd_clips(u8, p, where);
  std::vector<at::Tensor> f;
  for (int64_t k = 0; k < clips.size(0); k += p.clip_batch)
    f.push_back(detector.features(clips.narrow(0, k, std::min<int64_t>(p.clip_batch, clips.size(0) - k))));
  return at::cat(f);
}

}  // namespace hallo::eval
