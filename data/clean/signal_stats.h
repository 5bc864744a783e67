#pragma once
// Small 1-D statistics used by the cleaning rules. Internal to hallo_clean but
// declared here so the tests can pin their behaviour down.
#include <vector>

namespace hallo::clean::detail {

// Pearson correlation of a[i] and b[i]; 0 when either side is constant or n < 2
// (a flat mouth or flat audio cannot show that lips follow speech).
double pearson(const float* a, const float* b, int n);

struct LaggedCorr {
  double corr = 0;
  int lag = 0;  // best lag: a[i] is compared with b[i + lag]
};
// Best Pearson correlation of a[begin, end) against b shifted by lag in
// [-max_lag, max_lag], using only indices where both stay inside [begin, end).
LaggedCorr best_lagged_corr(const std::vector<float>& a, const std::vector<float>& b, int begin,
                            int end, int max_lag);

// Sliding median over [i - window/2, i + window/2] clipped to [begin, end),
// ignoring NaN entries (unmeasured); NaN-only windows give 0.
std::vector<float> window_median(const std::vector<float>& v, int begin, int end, int window);

}  // namespace hallo::clean::detail
