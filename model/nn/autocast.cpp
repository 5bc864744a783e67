#include "model/nn/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <cstring>

#include "core/error.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define HALLO_AUTOCAST_GENERIC 1
#endif

namespace hallo::nn {

namespace {

bool is_enabled(c10::DeviceType d) {
#ifdef HALLO_AUTOCAST_GENERIC
  return at::autocast::is_autocast_enabled(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

void set_enabled(c10::DeviceType d, bool on) {
#ifdef HALLO_AUTOCAST_GENERIC
  at::autocast::set_autocast_enabled(d, on);
#else
  if (d == c10::DeviceType::CPU) at::autocast::set_cpu_enabled(on);
  else at::autocast::set_enabled(on);
#endif
}

c10::ScalarType get_dtype(c10::DeviceType d) {
#ifdef HALLO_AUTOCAST_GENERIC
  return at::autocast::get_autocast_dtype(d);
#else
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
#endif
}

void set_dtype(c10::DeviceType d, c10::ScalarType t) {
#ifdef HALLO_AUTOCAST_GENERIC
  at::autocast::set_autocast_dtype(d, t);
#else
  if (d == c10::DeviceType::CPU) at::autocast::set_autocast_cpu_dtype(t);
  else at::autocast::set_autocast_gpu_dtype(t);
#endif
}

}  // namespace

AutocastGuard::AutocastGuard(c10::DeviceType device, c10::ScalarType dtype, bool enabled) : device_(device) {
  if (!enabled) return;
  if (device != c10::DeviceType::CPU && device != c10::DeviceType::CUDA)
    fail("autocast: device type {} is not supported (CPU or CUDA)", c10::DeviceTypeName(device));
  if (device == c10::DeviceType::CPU && dtype != c10::ScalarType::BFloat16)
    fail("autocast on CPU supports bf16 only, not {}", c10::toString(dtype));
  prev_enabled_ = is_enabled(device);
  prev_dtype_ = get_dtype(device);
  set_enabled(device, true);
  set_dtype(device, dtype);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastGuard::AutocastGuard(const AutocastState& s) : AutocastGuard(s.device, s.dtype, s.enabled) {}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Leaving the outermost autocast region frees the casted-weight cache, as torch does.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(device_, prev_enabled_);
  set_dtype(device_, prev_dtype_);
}

AutocastState autocast_state(c10::DeviceType device) {
  AutocastState s;
  s.device = device;
  if (device != c10::DeviceType::CPU && device != c10::DeviceType::CUDA) return s;
  s.enabled = is_enabled(device);
  if (s.enabled) s.dtype = get_dtype(device);
  return s;
}

c10::ScalarType mixed_precision_dtype(const char* name) {
  if (std::strcmp(name, "no") == 0 || std::strcmp(name, "fp32") == 0) return c10::ScalarType::Float;
  if (std::strcmp(name, "bf16") == 0) return c10::ScalarType::BFloat16;
  if (std::strcmp(name, "fp16") == 0) return c10::ScalarType::Half;
  fail("precision must be no / fp32, bf16 or fp16, got '{}'", name);
}

}  // namespace hallo::nn
