#pragma once
// Full-reference frame metrics against the ground-truth video: PSNR and SSIM
// (Wang et al. 2004: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range
// 255, per channel then averaged, valid region only like skimage's
// structural_similarity(gaussian_weights=True, use_sample_covariance=False)).
#include <ATen/core/Tensor.h>

namespace hallo::eval {

// a, b: [H,W,C] or [N,H,W,C] uint8 (or float on the 0..255 scale). Per-frame values [N] (float64).
at::Tensor psnr(const at::Tensor& a, const at::Tensor& b);
at::Tensor ssim(const at::Tensor& a, const at::Tensor& b);

}  // namespace hallo::eval
