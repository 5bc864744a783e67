#pragma once
// libtorch's CPU tensors on this project's allocator. Large blocks (>= 2 MiB) are
// mapped on their own, 2 MiB-aligned, with transparent huge pages requested
// (madvise), and unmapped when freed; smaller ones come from the malloc heap, which
// keeps freed memory. On the VMs this project runs on a 4 KiB page fault costs ~7 us,
// so a freshly allocated 256 MiB attention buffer cost ~0.5 s of faults before a
// single multiply; with huge pages the same first touch costs ~25 ms. No memory is
// cached or rounded up: a block's resident size is what it uses (its last partial
// huge page falls back to small pages).
#include <cstdint>

namespace hallo {

// Installs the allocator (once; later calls do nothing). false when unsupported.
bool install_cpu_allocator();

// CPU tensor bytes allocated through this allocator: live now, and the most live
// since the last reset_cpu_memory_peak(). Exact sizes (mapped length, or malloc's
// usable size), so a difference of two readings is what tensors took in between
// (`hallo train --dry-run` measures activations this way). tracked = false before
// install_cpu_allocator(), and then both are 0.
struct CpuMemoryStats {
  int64_t live = 0, peak = 0;
  bool tracked = false;
};
CpuMemoryStats cpu_memory_stats();
void reset_cpu_memory_peak();

}  // namespace hallo
