#pragma once
// The single place that decides libtorch's thread counts.
// Priority: explicit value (--threads) > HALLO_THREADS env > hardware concurrency.
// libtorch starts at 1 intra-op thread on some Debian builds, so every binary
// must call this once at startup.

namespace hallo {

// Returns the intra-op thread count that was applied. `requested` <= 0 means "not given".
int configure_threads(int requested = 0);

// What configure_threads would choose, without applying it (for tests and logs).
int resolve_thread_count(int requested);

}  // namespace hallo
