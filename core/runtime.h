#pragma once
// Process-wide runtime setup every hallo binary (CLI, benches, tests) calls once
// at startup, before any tensor op:
//  - intra-op threads (core/threads.h policy),
//  - glibc malloc tuning: by default every large tensor is a fresh mmap and every
//    free an munmap, so each forward pass page-faults its working set again;
//    keeping freed memory in the heap lets the next step reuse mapped pages
//    (measured ~1.3x on the full-size UNet forward; HALLO_MALLOC_TUNING=0 disables).

namespace hallo {

struct RuntimeInfo {
  int threads = 1;
  bool malloc_tuned = false;
};

RuntimeInfo configure_runtime(int threads = 0);

// Only the allocator part (benchmarks compare with and without it).
bool configure_allocator();

}  // namespace hallo
