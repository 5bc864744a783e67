// pytorch-fid's statistics and Frechet distance: in.act1/in.act2 (and the N < D
// *_singular pair) -> out.mu*, out.sigma*, out.fd*, out.eps_fallback*.
#include <ATen/ATen.h>

#include "eval/frechet.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_frechet(const GoldenCase& c) {
  Outputs o;
  for (const std::string suffix : {"", "_singular"}) {
    if (!c.has("in.act1" + suffix)) continue;
    const auto s1 = eval::gaussian_stats(c.input("in.act1" + suffix), "in.act1" + suffix);
    const auto s2 = eval::gaussian_stats(c.input("in.act2" + suffix), "in.act2" + suffix);
    const auto fd = eval::frechet_distance(s1, s2);
    o["out.mu1" + suffix] = s1.mu;
    o["out.sigma1" + suffix] = s1.sigma;
    o["out.mu2" + suffix] = s2.mu;
    o["out.sigma2" + suffix] = s2.sigma;
    o["out.fd" + suffix] = at::scalar_tensor(fd.distance, at::kDouble);
    o["out.eps_fallback" + suffix] = at::scalar_tensor(fd.eps_fallback, at::kBool);
  }
  return o;
}

}  // namespace hallo::golden
