#include "core/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "core/error.h"

namespace hallo {

int resolve_thread_count(int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("HALLO_THREADS"); env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (*end != '\0' || v <= 0 || v > 4096)
      fail("HALLO_THREADS: expected a positive integer, got '{}'", env);
    return static_cast<int>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int configure_threads(int requested) {
  const int n = resolve_thread_count(requested);
  at::set_num_threads(n);
  // Inter-op threads can only be set before the first parallel op; ignore if too late.
  try {
    at::set_num_interop_threads(n);
  } catch (...) {
  }
  return n;
}

}  // namespace hallo
