#pragma once
// HALLO_CHECK_FINITE=1: every instrumented forward checks its output and throws
// naming the first layer kind that produced NaN/Inf. Off by default (one
// branch per layer); for debugging numerics and backend bugs.
#include <ATen/core/Tensor.h>

namespace hallo::nn {

bool check_finite_enabled();
void check_finite_or_throw(const at::Tensor& t, const char* what);

inline void check_finite(const at::Tensor& t, const char* what) {
  if (check_finite_enabled()) check_finite_or_throw(t, what);
}

}  // namespace hallo::nn
