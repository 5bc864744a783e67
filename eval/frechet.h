#pragma once
// Fréchet distance between two Gaussians fitted to feature sets: the distance
// FID, FVD and E-FID share, equal to pytorch-fid's calculate_frechet_distance.
// Everything in float64: mu = mean, sigma = unbiased covariance (N-1).
// d = |mu1-mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrtm(S1 S2)), with the trace of the square
// root taken from the general eigenvalues of S1 S2: Tr sqrtm(S1 S2) = sum Re sqrt(l_i),
// the spectrum scipy's Schur-based sqrtm works on. (The symmetric route
// sqrt(S1) S2 sqrt(S1) has the same exact trace but different round-off: with fewer
// samples than dimensions it drifts ~1e-8 relative from pytorch-fid.)
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace hallo::eval {

struct GaussianStats {
  at::Tensor mu;     // F64 [D]
  at::Tensor sigma;  // F64 [D,D]
  int64_t n = 0;     // samples they came from
};

// act: [N,D] any floating dtype. N >= 2 (a covariance needs two samples): throws
// hallo::Error naming `what` otherwise.
GaussianStats gaussian_stats(const at::Tensor& act, const std::string& what = "features");

struct FrechetResult {
  double distance = 0;
  // pytorch-fid's fallback: the square root was not usable (non-finite, or the PSD
  // product showed negative eigenvalues beyond round-off: a near-singular,
  // numerically indefinite covariance), so eps*I was added to both covariances.
  bool eps_fallback = false;
};

FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, double eps = 1e-6);

// Stats files (the real-set cache): safetensors with mu, sigma and n.
void save_stats(const std::filesystem::path& path, const GaussianStats& s);
GaussianStats load_stats(const std::filesystem::path& path);

}  // namespace hallo::eval
