#include "core/runtime.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/cpu_allocator.h"
#include "core/threads.h"

namespace hallo {

bool configure_allocator() {
  if (const char* e = std::getenv("HALLO_MALLOC_TUNING"); e && std::strcmp(e, "0") == 0) return false;
#if defined(__GLIBC__)
  bool ok = true;
  // Do not hand freed heap memory back to the kernel after every op, and grow the
  // heap in large steps.
  ok &= mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  ok &= mallopt(M_TOP_PAD, 1 << 30) == 1;
  // Blocks below 2 MiB from the heap (reused without page faults; setting the two
  // options above turns off glibc's adaptive mmap threshold, leaving it at 128 KiB);
  // larger ones go to the huge-page allocator (core/cpu_allocator.h).
  ok &= mallopt(M_MMAP_THRESHOLD, 2 << 20) == 1;
  ok &= install_cpu_allocator();
  return ok;
#else
  return false;
#endif
}

RuntimeInfo configure_runtime(int threads) {
  RuntimeInfo info;
  info.malloc_tuned = configure_allocator();
  info.threads = configure_threads(threads);
  return info;
}

}  // namespace hallo
