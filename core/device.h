#pragma once
// Which device a command computes on, from the user's word for it ("cpu", "cuda",
// "cuda:N", "auto"), and the device's memory high-water mark. CPU builds of
// libtorch (Debian's 1.13) know the name "cuda" but cannot run it: asking for it
// fails here with a clear message instead of deep inside the first tensor copy.
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>
#include <string>

namespace hallo {

// "auto" / "": cuda:<local_rank> when this build sees a GPU, else cpu. "cuda": cuda:<local_rank>.
// `what` names the option in errors ("--device").
c10::Device resolve_device(const std::string& name, int local_rank = 0, const std::string& what = "--device");

// True when this libtorch was built with CUDA and sees at least one GPU.
bool cuda_available();

// Peak bytes the caching allocator handed out (allocated) and held (reserved) on a CUDA
// device since the last reset; nullopt on CPU or in builds without the CUDA allocator API.
struct DevicePeak {
  int64_t allocated = 0, reserved = 0;
};
std::optional<DevicePeak> device_peak(const c10::Device& d);
void reset_device_peak(const c10::Device& d);
// Waits for the device's queued work (timing on CUDA); no-op on CPU.
void synchronize(const c10::Device& d);

}  // namespace hallo
