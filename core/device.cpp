#include "core/device.h"

#include <torch/cuda.h>

#include <cctype>

#include "core/error.h"

#ifdef HALLO_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace hallo {

bool cuda_available() { return torch::cuda::is_available(); }

c10::Device resolve_device(const std::string& name, int local_rank, const std::string& what) {
  std::string n;
  for (char ch : name) n += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (n.empty() || n == "auto") return cuda_available() ? resolve_device("cuda", local_rank, what) : c10::Device(c10::kCPU);
  if (n == "cpu") return c10::Device(c10::kCPU);
  if (n.rfind("cuda", 0) != 0) fail("{} '{}': expected cpu, cuda, cuda:N or auto", what, name);
  if (!cuda_available())
    fail("{} '{}': this libtorch has no CUDA or sees no GPU (run on cpu, or build against a CUDA libtorch: README, "
         "Build notes)", what, name);
  int index = local_rank;
  if (n != "cuda") {
    const std::string tail = n.substr(4);
    if (tail.size() < 2 || tail[0] != ':' || tail.find_first_not_of("0123456789", 1) != std::string::npos)
      fail("{} '{}': expected cuda or cuda:N", what, name);
    index = std::stoi(tail.substr(1));
  }
  const auto count = static_cast<int>(torch::cuda::device_count());
  if (index < 0 || index >= count)
    fail("{} '{}': GPU {} does not exist ({} visible{})", what, name, index, count,
         n == "cuda" ? "; the local rank picks the GPU" : "");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::optional<DevicePeak> device_peak(const c10::Device& d) {
#ifdef HALLO_WITH_CUDA
  if (d.is_cuda()) {
    // Index 0 of each stat array is StatType::AGGREGATE (libtorch 1.13 and 2.x alike;
    // the enum moved namespaces in 2.x, the layout did not).
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index());
    return DevicePeak{stats.allocated_bytes[0].peak, stats.reserved_bytes[0].peak};
  }
#endif
  (void)d;
  return std::nullopt;
}

void reset_device_peak(const c10::Device& d) {
#ifdef HALLO_WITH_CUDA
  if (d.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(d.index());
#endif
  (void)d;
}

void synchronize(const c10::Device& d) {
#ifdef HALLO_WITH_CUDA
  if (d.is_cuda()) c10::cuda::device_synchronize();
#endif
  (void)d;
}

}  // namespace hallo
