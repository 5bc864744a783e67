#pragma once
// libtorch's CPU tensors on this project's allocator. Large blocks (>= 2 MiB) are
// mapped on their own, 2 MiB-aligned, with transparent huge pages requested
// (madvise), and unmapped when freed; smaller ones come from the malloc heap, which
// keeps freed memory. On the VMs this project runs on a 4 KiB page fault costs ~7 us,
// so a freshly allocated 256 MiB attention buffer cost ~0.5 s of faults before a
// single multiply; with huge pages the same first touch costs ~25 ms. No memory is
// cached or rounded up: a block's resident size is what it uses (its last partial
// huge page falls back to small pages).
namespace hallo {

// Installs the allocator (once; later calls do nothing). false when unsupported.
bool install_cpu_allocator();

}  // namespace hallo
