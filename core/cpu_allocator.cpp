#include "core/cpu_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>
#include <torch/version.h>
#include <unistd.h>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

namespace hallo {

namespace {

constexpr size_t kHuge = size_t{2} << 20;

// Lengths of the mapped blocks. libtorch frees through raw_deleter() with the data
// pointer alone, so the length is looked up; only 2 MiB-aligned pointers can be mapped
// blocks, so the heap's blocks rarely take the lock.
std::mutex g_mutex;
std::unordered_map<uintptr_t, size_t>& mappings() {
  static std::unordered_map<uintptr_t, size_t> m;
  return m;
}

std::atomic<bool> g_installed{false};
std::atomic<int64_t> g_live{0}, g_peak{0};

void count_alloc(int64_t n) {
  const int64_t now = g_live.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void free_any(void* ptr) {
  const auto key = reinterpret_cast<uintptr_t>(ptr);
  if (key % kHuge == 0) {
    size_t len = 0;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      auto it = mappings().find(key);
      if (it != mappings().end()) {
        len = it->second;
        mappings().erase(it);
      }
    }
    if (len) {
      g_live.fetch_sub(static_cast<int64_t>(len), std::memory_order_relaxed);
      ::munmap(ptr, len);
      return;
    }
  }
  if (ptr) g_live.fetch_sub(static_cast<int64_t>(::malloc_usable_size(ptr)), std::memory_order_relaxed);
  c10::free_cpu(ptr);
}

// libtorch 2.3 dropped the const of c10::Allocator::allocate.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define HALLO_ALLOCATE_CONST
#else
#define HALLO_ALLOCATE_CONST const
#endif

struct HugePageAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) HALLO_ALLOCATE_CONST override {
    if (n < kHuge) {
      void* p = c10::alloc_cpu(n);
      if (p) count_alloc(static_cast<int64_t>(::malloc_usable_size(p)));
      return {p, p, &free_any, c10::Device(c10::DeviceType::CPU)};
    }
    // Map n + 2 MiB, keep the 2 MiB-aligned n bytes, return the rest to the kernel.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t len = (n + page - 1) / page * page;
    void* raw = ::mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
    if (aligned > start) ::munmap(raw, aligned - start);
    const uintptr_t end = start + len + kHuge;
    if (end > aligned + len) ::munmap(reinterpret_cast<void*>(aligned + len), end - (aligned + len));
    void* p = reinterpret_cast<void*>(aligned);
    ::madvise(p, len, MADV_HUGEPAGE);  // advice only: without THP this is a plain mapping
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      mappings()[aligned] = len;
    }
    count_alloc(static_cast<int64_t>(len));
    return {p, p, &free_any, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &free_any; }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif
};

}  // namespace

bool install_cpu_allocator() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    static HugePageAllocator allocator;
    c10::SetCPUAllocator(&allocator, /*priority=*/1);
    g_installed = true;
    ok = true;
  });
  return ok;
}

CpuMemoryStats cpu_memory_stats() {
  CpuMemoryStats s;
  s.tracked = g_installed.load();
  s.live = g_live.load(std::memory_order_relaxed);
  s.peak = std::max(g_peak.load(std::memory_order_relaxed), s.live);
  return s;
}

void reset_cpu_memory_peak() { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }

}  // namespace hallo
