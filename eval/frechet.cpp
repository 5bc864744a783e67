#include "eval/frechet.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"

namespace hallo::eval {

GaussianStats gaussian_stats(const at::Tensor& act, const std::string& what) {
  if (act.dim() != 2) fail("{}: features must be [N,D], got {}", what, c10::str(act.sizes()));
  if (act.size(0) < 2) fail("{}: {} feature vector(s); a covariance needs at least 2", what, act.size(0));
  const at::Tensor x = act.to(at::kDouble);  // [N,D], float64 like get_activations' array
  GaussianStats s;
  s.n = x.size(0);
  s.mu = x.mean(0);                          // [D]
  const at::Tensor c = x - s.mu;             // [N,D]
  // np.cov(ddof=1) multiplies by the reciprocal; doing the same keeps the bits equal.
  s.sigma = at::matmul(c.t(), c) * (1.0 / static_cast<double>(s.n - 1));  // [D,D]
  return s;
}

namespace {

// Tr sqrtm(S1 S2) = sum_i Re sqrt(lambda_i(S1 S2)), from the general eigenvalues of the
// product (LAPACK geev): the spectrum scipy's Schur-based sqrtm works on, so with N < D
// features the ~1e-16 round-off eigenvalues of the rank-deficient product contribute
// what they contribute to pytorch-fid (~1e-8 each), not a different bias. `ok` is false
// when the result is unusable: non-finite, or eigenvalues negative beyond round-off
// (covariances that became indefinite: pytorch-fid would return NaN or raise there).
double trace_sqrt_product(const at::Tensor& s1, const at::Tensor& s2, bool* ok) {
  constexpr double kNegTol = 1e-8;  // relative to the largest |eigenvalue|; round-off is ~1e-15
  const at::Tensor ev = at::linalg_eigvals(at::matmul(s1, s2));  // complex [D]
  const double evmax = ev.abs().max().item<double>();
  const double tr = at::real(at::sqrt(ev)).sum().item<double>();
  *ok = std::isfinite(tr) && std::isfinite(evmax) && at::real(ev).min().item<double>() >= -kNegTol * evmax;
  return tr;
}

}  // namespace

FrechetResult frechet_distance(const GaussianStats& a, const GaussianStats& b, double eps) {
  if (a.mu.sizes() != b.mu.sizes() || a.sigma.sizes() != b.sigma.sizes())
    fail("Frechet distance: feature sizes differ ({} vs {})", c10::str(a.mu.sizes()), c10::str(b.mu.sizes()));
  const at::Tensor diff = a.mu - b.mu;
  const double mean_term = diff.dot(diff).item<double>();
  FrechetResult r;
  bool ok = true;
  double tr_covmean = trace_sqrt_product(a.sigma, b.sigma, &ok);
  if (!ok) {
    // pytorch-fid's fallback ("fid calculation produces singular product; adding eps to diagonal").
    r.eps_fallback = true;
    const at::Tensor off = at::eye(a.sigma.size(0), a.sigma.options()) * eps;
    tr_covmean = trace_sqrt_product(a.sigma + off, b.sigma + off, &ok);
  }
  r.distance = mean_term + a.sigma.trace().item<double>() + b.sigma.trace().item<double>() - 2 * tr_covmean;
  if (!std::isfinite(r.distance)) fail("Frechet distance is not finite (features contain NaN or Inf?)");
  return r;
}

void save_stats(const std::filesystem::path& path, const GaussianStats& s) {
  io::write_safetensors(path, {io::from_tensor("mu", s.mu), io::from_tensor("sigma", s.sigma)},
                        {{"n", std::to_string(s.n)}, {"format", "hallo-eval-stats-1"}});
}

GaussianStats load_stats(const std::filesystem::path& path) {
  const io::WeightSet ws = io::read_safetensors(path);
  auto it = ws.metadata.find("format");
  if (it == ws.metadata.end() || it->second != "hallo-eval-stats-1")
    fail_at(path.string(), "not a hallo eval statistics file (metadata format missing)");
  const io::StateDict sd(ws);
  GaussianStats s;
  s.mu = sd.tensor("mu").to(at::kDouble).clone();
  s.sigma = sd.tensor("sigma").to(at::kDouble).clone();
  s.n = std::stoll(ws.metadata.at("n"));
  if (s.mu.dim() != 1 || s.sigma.dim() != 2 || s.sigma.size(0) != s.mu.size(0) || s.sigma.size(1) != s.mu.size(0))
    fail_at(path.string(), "statistics shapes mu {} sigma {} do not fit", c10::str(s.mu.sizes()), c10::str(s.sigma.sizes()));
  return s;
}

}  // namespace hallo::eval
