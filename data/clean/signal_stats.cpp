#include "data/clean/signal_stats.h"

#include <algorithm>
#include <cmath>

namespace hallo::clean::detail {

double pearson(const float* a, const float* b, int n) {
  if (n < 2) return 0;
  double ma = 0, mb = 0;
  for (int i = 0; i < n; ++i) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (int i = 0; i < n; ++i) {
    const double da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  // Relative floor: float noise on a constant signal must not read as variance.
  const double eps = 1e-12 * n * (ma * ma + mb * mb + 1e-12);
  if (saa <= eps || sbb <= eps) return 0;
  return sab / std::sqrt(saa * sbb);
}

LaggedCorr best_lagged_corr(const std::vector<float>& a, const std::vector<float>& b, int begin,
                            int end, int max_lag) {
  LaggedCorr best{-2, 0};
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    // a[i] with b[i + lag], both indices inside [begin, end).
    const int lo = std::max(begin, begin - lag);
    const int hi = std::min(end, end - lag);
    if (hi - lo < 2) continue;
    const double c = pearson(a.data() + lo, b.data() + lo + lag, hi - lo);
    // Prefer the smallest |lag| on ties so a perfect match reports lag 0.
    if (c > best.corr + 1e-12 || (std::abs(c - best.corr) <= 1e-12 && std::abs(lag) < std::abs(best.lag))) {
      best = {c, lag};
    }
  }
  if (best.corr < -1) best = {0, 0};
  return best;
}

std::vector<float> window_median(const std::vector<float>& v, int begin, int end, int window) {
  std::vector<float> out(v.size(), 0.f);
  const int half = std::max(window, 1) / 2;
  std::vector<float> buf;
  for (int i = begin; i < end; ++i) {
    buf.clear();
    for (int j = std::max(begin, i - half); j <= std::min(end - 1, i + half); ++j) {
      if (!std::isnan(v[j])) buf.push_back(v[j]);
    }
    if (buf.empty()) continue;
    // Lower median for even counts: a window cut short by a piece edge must not
    // be dominated by a single value.
    auto mid = buf.begin() + (buf.size() - 1) / 2;
    std::nth_element(buf.begin(), mid, buf.end());
    out[i] = *mid;
  }
  return out;
}

}  // namespace hallo::clean::detail
