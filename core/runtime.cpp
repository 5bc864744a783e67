#include "core/runtime.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <limits>

#include "core/threads.h"

namespace hallo {

bool configure_allocator() {
  if (const char* e = std::getenv("HALLO_MALLOC_TUNING"); e && std::strcmp(e, "0") == 0) return false;
#if defined(__GLIBC__)
  bool ok = true;
  // Do not hand freed heap memory back to the kernel after every op, and grow the
  // heap in large steps. (Measured: also raising M_MMAP_THRESHOLD was slower.)
  ok &= mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
  ok &= mallopt(M_TOP_PAD, 1 << 30) == 1;
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
