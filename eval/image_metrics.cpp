#include "eval/image_metrics.h"

#include <ATen/ATen.h>

#include <cmath>

#include "core/error.h"

namespace hallo::eval {

namespace {

// [N,H,W,C] float64 on the 0..255 scale.
at::Tensor as_frames(const at::Tensor& x, const char* what) {
  at::Tensor t = x.dim() == 3 ? x.unsqueeze(0) : x;
  if (t.dim() != 4) fail("{}: frames must be [H,W,C] or [N,H,W,C], got {}", what, c10::str(x.sizes()));
  return t;
}

void same_shape(const at::Tensor& a, const at::Tensor& b, const char* what) {
  if (a.sizes() != b.sizes())
    fail("{}: generated frames {} and real frames {} differ in size (resize one first)", what, c10::str(a.sizes()),
         c10::str(b.sizes()));
}

// Normalised 1-D Gaussian, sigma 1.5, radius 5: scipy.ndimage.gaussian_filter's kernel
// with skimage's truncate 3.5 (win_size = 2 * int(3.5 * 1.5 + 0.5) + 1 = 11).
std::vector<double> gaussian_taps() {
  std::vector<double> w(11);
  double sum = 0;
  for (int i = 0; i < 11; ++i) sum += (w[i] = std::exp(-0.5 * (i - 5) * (i - 5) / (1.5 * 1.5)));
  for (auto& v : w) v /= sum;
  return w;
}

// Separable Gaussian over H and W of [B,H,W], valid region only ([B,H-10,W-10]): the
// 5-pixel border skimage crops is exactly where its reflect padding would have entered.
// Shifted-slice sums: in float64 conv2d would im2col 11x the frames into memory.
at::Tensor filt(const at::Tensor& x, const std::vector<double>& g) {
  const int64_t h = x.size(1) - 10, w = x.size(2) - 10;
  at::Tensor y = x.narrow(1, 0, h) * g[0];
  for (int k = 1; k < 11; ++k) y.add_(x.narrow(1, k, h), g[k]);
  at::Tensor z = y.narrow(2, 0, w) * g[0];
  for (int k = 1; k < 11; ++k) z.add_(y.narrow(2, k, w), g[k]);
  return z;
}

}  // namespace

at::Tensor psnr(const at::Tensor& a_, const at::Tensor& b_) {
  const at::Tensor a = as_frames(a_, "PSNR"), b = as_frames(b_, "PSNR");
  same_shape(a, b, "PSNR");
  // A few frames at a time: a whole 512^2 video in float64 is gigabytes.
  at::Tensor mse = at::empty({a.size(0)}, at::kDouble);  // [N]
  for (int64_t i = 0; i < a.size(0); i += 8) {
    const int64_t m = std::min<int64_t>(8, a.size(0) - i);
    mse.narrow(0, i, m).copy_((a.narrow(0, i, m).to(at::kDouble) - b.narrow(0, i, m).to(at::kDouble)).pow(2).flatten(1).mean(1));
  }
  return 10.0 * at::log10(255.0 * 255.0 / mse);  // inf where identical, like skimage
}

at::Tensor ssim(const at::Tensor& a_, const at::Tensor& b_) {
  const at::Tensor a = as_frames(a_, "SSIM"), b = as_frames(b_, "SSIM");
  same_shape(a, b, "SSIM");
  if (a.size(1) < 11 || a.size(2) < 11) fail("SSIM: frames of {}x{} are smaller than the 11x11 window", a.size(2), a.size(1));
  const int64_t n = a.size(0), c = a.size(3);
  const auto g = gaussian_taps();
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  at::Tensor out = at::empty({n}, at::kDouble);
  // A few frames at a time keeps the float64 moment maps small.
  constexpr int64_t kChunk = 4;
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    const int64_t m = std::min(kChunk, n - i0);
    // Every channel of every frame as its own [m*C,H,W] image.
    const at::Tensor x = a.narrow(0, i0, m).to(at::kDouble).permute({0, 3, 1, 2}).reshape({m * c, a.size(1), a.size(2)});
    const at::Tensor y = b.narrow(0, i0, m).to(at::kDouble).permute({0, 3, 1, 2}).reshape({m * c, b.size(1), b.size(2)});
    const at::Tensor ux = filt(x, g), uy = filt(y, g);
    const at::Tensor vx = filt(x * x, g) - ux * ux, vy = filt(y * y, g) - uy * uy, vxy = filt(x * y, g) - ux * uy;
    const at::Tensor s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
    out.narrow(0, i0, m).copy_(s.flatten(1).mean(1).view({m, c}).mean(1));  // map mean, then channel mean
  }
  return out;
}

}  // namespace hallo::eval
