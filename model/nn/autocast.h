#pragma once
// Mixed precision: one RAII guard that turns on libtorch's autocast for a device
// type and a lower-precision dtype within a scope (bf16 / fp16 for matmuls and
// convolutions, float32 where autocast keeps it), and restores the previous state.
// Compiles on libtorch 1.13 (per-device functions) and 2.x (device-generic functions
// since 2.4). Weights stay float32 (the master copy); only the ops run in low precision.
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace hallo::nn {

struct AutocastState;

class AutocastGuard {
 public:
  // `enabled` false: a no-op guard (one code path for mixed and full precision).
  AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled = true);
  // Re-enters a recorded state (autocast_state below); a no-op when it was off.
  explicit AutocastGuard(const AutocastState& s);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  c10::DeviceType device_;
  bool active_ = false, prev_enabled_ = false;
  c10::ScalarType prev_dtype_ = c10::ScalarType::Undefined;
};

// "no" / "fp32" / "bf16" / "fp16" (upstream's mixed_precision and weight_dtype values) ->
// dtype; Float for "no" and "fp32".
c10::ScalarType mixed_precision_dtype(const char* name);

// This thread's autocast state for a device type. Custom autograd functions record it in
// forward: autograd runs their backward with autocast off, so a backward that recomputes
// part of the forward (checkpointing, the frozen resnet) re-enters it with
// AutocastGuard(state) to compute the same tensors in the same dtypes.
struct AutocastState {
  c10::DeviceType device = c10::DeviceType::CPU;
  bool enabled = false;
  c10::ScalarType dtype = c10::ScalarType::Float;
  // The dtype an autocast-listed op (conv, matmul) computes in for an input of `t`.
  c10::ScalarType compute_dtype(c10::ScalarType t) const { return enabled ? dtype : t; }
};
AutocastState autocast_state(c10::DeviceType device);

}  // namespace hallo::nn
