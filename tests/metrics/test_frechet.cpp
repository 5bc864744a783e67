// Fréchet distance: identical sets, closed forms for Gaussians whose sample
// statistics are constructed exactly, the eps path, and the statistics cache file.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "eval/frechet.h"

namespace {

using hallo::eval::frechet_distance;
using hallo::eval::gaussian_stats;
using hallo::eval::GaussianStats;

// n samples in d dims whose sample mean is exactly `mu` and sample covariance exactly
// `cov` (up to round-off): whiten random draws, then colour them with chol(cov).
at::Tensor samples_with(const at::Tensor& mu, const at::Tensor& cov, int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  at::Tensor x = at::randn({n, mu.size(0)}, at::kDouble);
  x = x - x.mean(0);
  const at::Tensor s = at::matmul(x.t(), x) / static_cast<double>(n - 1);
  const at::Tensor wl = at::linalg_cholesky(s);               // s = L L^T
  x = at::linalg_solve_triangular(wl, x.t(), /*upper=*/false).t();  // sample cov = I
  return at::matmul(x, at::linalg_cholesky(cov).t()) + mu;
}

at::Tensor random_rotation(int64_t d, uint64_t seed) {
  at::manual_seed(seed);
  return std::get<0>(at::linalg_qr(at::randn({d, d}, at::kDouble)));
}

TEST(Frechet, IdenticalSetsGiveZero) {
  at::manual_seed(1);
  const at::Tensor act = at::randn({200, 16}, at::kFloat) * 3 + 1;
  const auto s = gaussian_stats(act);
  const auto r = frechet_distance(s, s);
  EXPECT_NEAR(r.distance, 0.0, 1e-9);
  EXPECT_FALSE(r.eps_fallback);
}

TEST(Frechet, StatsAreMeanAndUnbiasedCovariance) {
  const at::Tensor act = at::tensor({1.0, 2.0, 3.0, 5.0, 5.0, 9.0}, at::kDouble).view({3, 2});
  const auto s = gaussian_stats(act);
  EXPECT_TRUE(at::allclose(s.mu, at::tensor({3.0, 16.0 / 3.0}, at::kDouble)));
  // var of {1,3,5} = 4, of {2,5,9} = 12.333.., cov = 7
  EXPECT_NEAR(s.sigma[0][0].item<double>(), 4.0, 1e-12);
  EXPECT_NEAR(s.sigma[1][1].item<double>(), 37.0 / 3.0, 1e-12);
  EXPECT_NEAR(s.sigma[0][1].item<double>(), 7.0, 1e-12);
  EXPECT_EQ(s.n, 3);
}

TEST(Frechet, CommutingGaussiansMatchTheClosedForm) {
  const int64_t d = 12;
  const at::Tensor sa = at::linspace(0.5, 2.0, d, at::kDouble), sb = at::linspace(1.5, 0.2, d, at::kDouble);
  const at::Tensor q = random_rotation(d, 7);  // same eigenbasis for both: S1 S2 commute
  const at::Tensor c1 = at::matmul(q * sa.pow(2), q.t()), c2 = at::matmul(q * sb.pow(2), q.t());
  const at::Tensor mu1 = at::zeros({d}, at::kDouble), mu2 = at::full({d}, 0.25, at::kDouble);
  const auto s1 = gaussian_stats(samples_with(mu1, c1, 500, 2));
  const auto s2 = gaussian_stats(samples_with(mu2, c2, 400, 3));
  // |mu1-mu2|^2 + sum (sa - sb)^2
  const double want = d * 0.0625 + (sa - sb).pow(2).sum().item<double>();
  EXPECT_NEAR(frechet_distance(s1, s2).distance, want, 1e-9 * want);
}

TEST(Frechet, NonCommutingGaussiansMatchTheClosedForm) {
  // S1 = c I: Tr sqrtm(S1 S2) = sqrt(c) * sum sqrt(eig(S2)) for any S2.
  const int64_t d = 10;
  const double c = 2.5;
  const at::Tensor ev = at::linspace(0.1, 3.0, d, at::kDouble);
  const at::Tensor q = random_rotation(d, 11);
  const at::Tensor c2 = at::matmul(q * ev, q.t());
  const auto s1 = gaussian_stats(samples_with(at::zeros({d}, at::kDouble), at::eye(d, at::kDouble) * c, 300, 4));
  const auto s2 = gaussian_stats(samples_with(at::ones({d}, at::kDouble), c2, 300, 5));
  const double want = d * 1.0 + c * d + ev.sum().item<double>() - 2 * std::sqrt(c) * ev.sqrt().sum().item<double>();
  const auto r = frechet_distance(s1, s2);
  EXPECT_NEAR(r.distance, want, 1e-9 * want);
  EXPECT_FALSE(r.eps_fallback);
}

TEST(Frechet, FewerSamplesThanDimensionsStaysOnTheDirectPath) {
  at::manual_seed(9);
  const auto s1 = gaussian_stats(at::randn({20, 48}, at::kDouble));
  const auto s2 = gaussian_stats(at::randn({30, 48}, at::kDouble) + 0.5);
  const auto r = frechet_distance(s1, s2);
  EXPECT_FALSE(r.eps_fallback);
  EXPECT_TRUE(std::isfinite(r.distance));
  EXPECT_GT(r.distance, 0.0);
}

TEST(Frechet, NearSingularIndefiniteCovarianceTakesTheEpsPath) {
  // A covariance that round-off made indefinite (a tiny negative eigenvalue, as a float32
  // statistics file of a near-singular set can hold): regularised by eps * I like pytorch-fid.
  const int64_t d = 8;
  const double eps = 1e-6;
  at::Tensor lam = at::linspace(1.0, 0.1, d, at::kDouble);
  lam[d - 1] = -1e-7;
  const at::Tensor q = random_rotation(d, 13);
  GaussianStats a{at::zeros({d}, at::kDouble), at::matmul(q * lam, q.t()), 100};
  GaussianStats b{at::zeros({d}, at::kDouble), at::eye(d, at::kDouble), 100};
  const auto r = frechet_distance(a, b, eps);
  EXPECT_TRUE(r.eps_fallback);
  // Traces of the unregularised matrices, square root of the regularised product.
  const double want = lam.sum().item<double>() + d - 2 * std::sqrt(1 + eps) * (lam + eps).sqrt().sum().item<double>();
  EXPECT_NEAR(r.distance, want, 1e-9);
}

TEST(Frechet, RefusesTooFewSamplesAndMismatchedSizes) {
  EXPECT_THROW(gaussian_stats(at::ones({1, 4}), "real set"), hallo::Error);
  const auto a = gaussian_stats(at::randn({5, 4})), b = gaussian_stats(at::randn({5, 3}));
  EXPECT_THROW(frechet_distance(a, b), hallo::Error);
}

TEST(Frechet, StatsFileRoundTripsExactly) {
  at::manual_seed(3);
  const auto s = gaussian_stats(at::randn({50, 6}, at::kDouble));
  const auto path = std::filesystem::temp_directory_path() / "hallo_frechet_stats_test.safetensors";
  hallo::eval::save_stats(path, s);
  const auto t = hallo::eval::load_stats(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(at::equal(s.mu, t.mu));
  EXPECT_TRUE(at::equal(s.sigma, t.sigma));
  EXPECT_EQ(s.n, t.n);
}

}  // namespace
