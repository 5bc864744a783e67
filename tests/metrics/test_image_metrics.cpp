// PSNR and SSIM against their closed forms.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/image_metrics.h"

namespace {

TEST(ImageMetrics, PsnrOfAConstantOffset) {
  const at::Tensor a = at::full({2, 16, 20, 3}, 100, at::kByte);
  const at::Tensor b = at::full({2, 16, 20, 3}, 110, at::kByte);
  const at::Tensor p = hallo::eval::psnr(a, b);
  ASSERT_EQ(p.size(0), 2);
  EXPECT_NEAR(p[0].item<double>(), 20 * std::log10(255.0 / 10.0), 1e-12);
  EXPECT_TRUE(std::isinf(hallo::eval::psnr(a, a)[0].item<double>()));
}

TEST(ImageMetrics, SsimOfConstantImagesIsTheLuminanceTerm) {
  // Constant images have zero variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1).
  const double c1 = std::pow(0.01 * 255, 2);
  const at::Tensor a = at::full({24, 24, 3}, 100, at::kByte), b = at::full({24, 24, 3}, 140, at::kByte);
  EXPECT_NEAR(hallo::eval::ssim(a, b)[0].item<double>(), (2 * 100 * 140 + c1) / (100 * 100 + 140 * 140 + c1), 1e-12);
}

TEST(ImageMetrics, SsimIsOneForIdenticalFramesAndDropsWithNoise) {
  at::manual_seed(0);
  const at::Tensor a = at::randint(0, 256, {3, 32, 40, 3}, at::kLong).to(at::kByte);
  const at::Tensor s = hallo::eval::ssim(a, a);
  EXPECT_TRUE(at::allclose(s, at::ones({3}, at::kDouble), 0, 1e-12));
  const at::Tensor noisy = (a.to(at::kDouble) + at::randn({3, 32, 40, 3}, at::kDouble) * 60).clamp(0, 255);
  const at::Tensor sn = hallo::eval::ssim(a, noisy);
  EXPECT_LT(sn.max().item<double>(), 0.9);
  EXPECT_GT(sn.min().item<double>(), 0.5);
}

TEST(ImageMetrics, SsimMatchesADirectWindowSum) {
  // One window position computed by hand: the 11x11 Gaussian-weighted moments at the centre.
  at::manual_seed(1);
  const at::Tensor a = at::rand({11, 11, 1}, at::kDouble) * 255, b = at::rand({11, 11, 1}, at::kDouble) * 255;
  std::vector<double> g(11);
  double gs = 0;
  for (int i = 0; i < 11; ++i) gs += (g[i] = std::exp(-0.5 * (i - 5) * (i - 5) / 2.25));
  double ux = 0, uy = 0, xx = 0, yy = 0, xy = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j) {
      const double w = g[i] * g[j] / (gs * gs), x = a[i][j][0].item<double>(), y = b[i][j][0].item<double>();
      ux += w * x, uy += w * y, xx += w * x * x, yy += w * y * y, xy += w * x * y;
    }
  const double c1 = std::pow(2.55, 2), c2 = std::pow(7.65, 2);
  const double want = ((2 * ux * uy + c1) * (2 * (xy - ux * uy) + c2)) /
                      ((ux * ux + uy * uy + c1) * (xx - ux * ux + yy - uy * uy + c2));
  EXPECT_NEAR(hallo::eval::ssim(a, b)[0].item<double>(), want, 1e-12);
}

TEST(ImageMetrics, SizeMismatchIsNamed) {
  EXPECT_THROW(hallo::eval::psnr(at::zeros({8, 8, 3}), at::zeros({8, 9, 3})), hallo::Error);
  EXPECT_THROW(hallo::eval::ssim(at::zeros({8, 8, 3}), at::zeros({8, 8, 3})), hallo::Error);  // < 11x11
}

}  // namespace
