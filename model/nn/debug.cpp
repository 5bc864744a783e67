#include "model/nn/debug.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace hallo::nn {

bool check_finite_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("HALLO_CHECK_FINITE");
    return e && std::strcmp(e, "0") != 0;
  }();
  return on;
}

void check_finite_or_throw(const at::Tensor& t, const char* what) {
  if (!at::isfinite(t).all().item<bool>())
    fail("non-finite values produced by {} (output shape {})", what, c10::str(t.sizes()));
}

}  // namespace hallo::nn
