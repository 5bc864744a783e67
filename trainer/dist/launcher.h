#pragma once
// `hallo train --nproc N`: starts N local ranks of this same program (one per GPU on
// CUDA, CPU ranks otherwise) with torchrun's environment (RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port) and supervises them.
// Each rank's stderr is forwarded line by line with a "[rank k]" prefix (rank 0's
// stdout unprefixed). When a rank dies (non-zero exit or a signal), the others are
// stopped (SIGTERM, then SIGKILL after `grace`) and the launcher exits non-zero naming
// the first rank that failed and its last log line. SIGINT / SIGTERM to the launcher
// are forwarded to every rank (which save a checkpoint and exit 130 / 143).
#include <chrono>
#include <string>
#include <vector>

namespace hallo::trainer::dist {

struct LaunchOptions {
  int nproc = 2;
  std::vector<std::string> args;  // argv of each rank (argv[0] = the program), without --nproc
  std::chrono::seconds grace{10};
  int threads_per_rank = 0;       // > 0: HALLO_THREADS for each rank (default: cores / nproc)
};

// Returns the exit code for the launcher: 0 when every rank exited 0.
int launch_local(const LaunchOptions& o);

// A TCP port nothing listens on now (bound to port 0 and released).
int free_port();

}  // namespace hallo::trainer::dist
