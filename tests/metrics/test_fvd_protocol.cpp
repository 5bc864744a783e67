// FVD input preparation: DisCo's clean-fid "PIL bicubic" resize against PIL's resampling
// algorithm written out (Resample.c: precompute_coeffs + separable passes, float mode),
// TF1 resize_bilinear against its definition, and the clip layouts of both protocols.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "eval/fvd_protocol.h"

namespace {

using hallo::eval::fvd_clips;
using hallo::eval::make_fvd_protocol;

double pil_bicubic(double x) {
  const double a = -0.5;
  x = std::abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

// PIL's coefficients for one axis: out x in, rows normalised.
at::Tensor pil_coeffs(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / out, filterscale = std::max(scale, 1.0), support = 2.0 * filterscale;
  at::Tensor k = at::zeros({out, in}, at::kDouble);
  for (int64_t xx = 0; xx < out; ++xx) {
    const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
    const int64_t xmin = std::max<int64_t>(0, static_cast<int64_t>(center - support + 0.5));
    const int64_t xmax = std::min<int64_t>(in, static_cast<int64_t>(center + support + 0.5));
    double ww = 0;
    for (int64_t x = xmin; x < xmax; ++x) ww += (k[xx][x] = pil_bicubic((x - center + 0.5) * ss)).item<double>();
    k[xx] /= ww;
  }
  return k;
}

// Horizontal pass, float32 store, vertical pass (what ImagingResample does for mode F).
at::Tensor pil_resize(const at::Tensor& img, int64_t size) {  // [C,H,W] double
  const at::Tensor kx = pil_coeffs(img.size(2), size), ky = pil_coeffs(img.size(1), size);
  const at::Tensor h = at::matmul(img, kx.t()).to(at::kFloat).to(at::kDouble);  // [C,H,size]
  return at::matmul(ky, h).clamp(0, 255);                                        // [C,size,size]
}

class PilResize : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(PilResize, MatchesPilsAlgorithm) {
  at::manual_seed(4);
  const auto [h, w] = GetParam();
  const at::Tensor img = at::randint(0, 256, {1, 3, h, w}, at::kLong).to(at::kFloat);
  const at::Tensor got = hallo::eval::resize_pil_bicubic(img, 224)[0].to(at::kDouble);
  const at::Tensor want = pil_resize(img[0].to(at::kDouble), 224);
  // 0..255 scale: float32 accumulation in torch vs double in PIL, ~2e-5 relative.
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-2) << h << "x" << w;
  if (h > 224) {  // shrinking: the antialiased filter matters (plain bicubic is far off)
    const at::Tensor plain = at::upsample_bicubic2d(img, {224, 224}, false)[0].to(at::kDouble).clamp(0, 255);
    EXPECT_GT((plain - want).abs().max().item<double>(), 1.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, PilResize,
                         ::testing::Values(std::make_pair(512, 512), std::make_pair(300, 260), std::make_pair(64, 96)));

TEST(FvdProtocol, Tf1BilinearFollowsItsDefinition) {
  at::manual_seed(5);
  const at::Tensor x = at::rand({1, 1, 7, 5}) * 255;
  const at::Tensor y = hallo::eval::resize_tf1_bilinear(x, 4, 3);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      const double sy = i * 7.0 / 4, sx = j * 5.0 / 3;  // no half-pixel offset
      const int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx);
      const int64_t y1 = std::min<int64_t>(y0 + 1, 6), x1 = std::min<int64_t>(x0 + 1, 4);
      const double ly = sy - y0, lx = sx - x0;
      auto v = [&](int64_t a, int64_t b) { return x[0][0][a][b].item<double>(); };
      const double want = (v(y0, x0) * (1 - lx) + v(y0, x1) * lx) * (1 - ly) + (v(y1, x0) * (1 - lx) + v(y1, x1) * lx) * ly;
      EXPECT_NEAR(y[0][0][i][j].item<double>(), want, 1e-3);
    }
}

TEST(FvdProtocol, ClipLayoutsAndRanges) {
  const at::Tensor frames = at::randint(0, 256, {40, 96, 80, 3}, at::kLong).to(at::kByte);
  const auto disco = make_fvd_protocol("disco");
  const at::Tensor d = fvd_clips(frames, disco, "v.mp4");
  EXPECT_EQ(d.sizes(), (std::vector<int64_t>{1, 3, 40, 224, 224}));
  EXPECT_GE(d.min().item<float>(), -1.0f);
  EXPECT_LE(d.max().item<float>(), 1.0f);
  EXPECT_EQ(disco.i3d.final_pool[0], 1);
  EXPECT_DOUBLE_EQ(disco.i3d.bn_eps, 1e-3);
  const auto c16 = make_fvd_protocol("clips16", 1e-5);
  const at::Tensor c = fvd_clips(frames, c16, "v.mp4");
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{2, 3, 16, 224, 224}));  // 40 frames -> 2 whole clips
  // Clip 1 frame 0 is video frame 16.
  const at::Tensor f16 = fvd_clips(frames.narrow(0, 16, 16), c16, "v.mp4");
  EXPECT_TRUE(at::equal(c[1], f16[0]));
  EXPECT_NE(disco.settings(), c16.settings());
  EXPECT_NE(make_fvd_protocol("disco", 1e-5).settings(), disco.settings());
}

TEST(FvdProtocol, ShortVideosAndUnknownNamesAreRefused) {
  const at::Tensor frames = at::zeros({10, 32, 32, 3}, at::kByte);
  try {
    fvd_clips(frames, make_fvd_protocol("clips16"), "short.mp4");
    FAIL() << "expected an error";
  } catch (const hallo::Error& e) {
    EXPECT_NE(std::string(e.what()).find("short.mp4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fvd_clips(frames.narrow(0, 0, 5), make_fvd_protocol("disco"), "tiny.mp4"), hallo::Error);
  EXPECT_THROW(make_fvd_protocol("tf"), hallo::Error);
}

}  // namespace
