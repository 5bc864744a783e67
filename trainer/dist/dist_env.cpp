#include "trainer/dist/dist_env.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace hallo::trainer::dist {

namespace {

const char* get(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int to_int(const char* name, const char* v) {
  try {
    size_t pos = 0;
    const int x = std::stoi(v, &pos);
    if (pos != std::string(v).size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    fail("environment variable {}='{}' is not an integer", name, v);
  }
}

}  // namespace

DistEnv dist_env_from_environment() {
  DistEnv e;
  // torchrun / `hallo train --nproc` first: they are explicit; SLURM's are ambient.
  if (get("WORLD_SIZE") || get("RANK")) {
    if (!get("WORLD_SIZE") || !get("RANK")) fail("RANK and WORLD_SIZE must be set together (torchrun sets both)");
    e.source = "torchrun";
    e.rank = to_int("RANK", get("RANK"));
    e.world_size = to_int("WORLD_SIZE", get("WORLD_SIZE"));
    e.local_rank = get("LOCAL_RANK") ? to_int("LOCAL_RANK", get("LOCAL_RANK")) : e.rank;
    if (const char* a = get("TORCHELASTIC_USE_AGENT_STORE"); a && std::string(a) == "True") {
      e.agent_store = true;
      if (const char* n = get("TORCHELASTIC_RESTART_COUNT")) e.restart_count = to_int("TORCHELASTIC_RESTART_COUNT", n);
    }
  } else if (get("SLURM_STEP_NUM_TASKS") && get("SLURM_PROCID") &&
             to_int("SLURM_STEP_NUM_TASKS", get("SLURM_STEP_NUM_TASKS")) > 1) {
    // An srun step (SLURM_STEP_NUM_TASKS); a batch script's own process has only the
    // job's SLURM_NTASKS and is one process.
    e.source = "slurm";
    e.rank = to_int("SLURM_PROCID", get("SLURM_PROCID"));
    e.world_size = to_int("SLURM_STEP_NUM_TASKS", get("SLURM_STEP_NUM_TASKS"));
    e.local_rank = get("SLURM_LOCALID") ? to_int("SLURM_LOCALID", get("SLURM_LOCALID")) : 0;
  } else {
    return e;
  }
  if (e.world_size < 1) fail("WORLD_SIZE must be >= 1, got {}", e.world_size);
  if (e.rank < 0 || e.rank >= e.world_size) fail("RANK {} is outside [0, WORLD_SIZE={})", e.rank, e.world_size);
  if (e.local_rank < 0) fail("LOCAL_RANK must be >= 0, got {}", e.local_rank);
  if (e.world_size > 1) {
    if (!get("MASTER_ADDR") || !get("MASTER_PORT"))
      fail("a {}-process run needs MASTER_ADDR and MASTER_PORT (the rank-0 host and a free port); {} did not set them",
           e.world_size, e.source);
    e.master_addr = get("MASTER_ADDR");
    e.master_port = to_int("MASTER_PORT", get("MASTER_PORT"));
    if (e.master_port <= 0 || e.master_port > 65535) fail("MASTER_PORT {} is not a TCP port", e.master_port);
  }
  return e;
}

}  // namespace hallo::trainer::dist
