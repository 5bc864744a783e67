#pragma once
// Mixed precision: one RAII guard that turns on libtorch's autocast for a device
// type and a lower-precision dtype within a scope (bf16 / fp16 for matmuls and
// convolutions, float32 where autocast keeps it), and restores the previous state.
// Compiles on libtorch 1.13 (per-device functions) and 2.x (device-generic functions
// since 2.4). Weights stay float32 (the master copy); only the ops run in low precision.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace hallo::nn {

class AutocastGuard {
 public:
  // `enabled` false: a no-op guard (one code path for mixed and full precision).
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false, prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Undefined;
};

// "no" / "bf16" / "fp16" (upstream's mixed_precision values) -> dtype; Float for "no".
c10::ScalarType mixed_precision_dtype(const char* name);

}  // namespace hallo::nn
