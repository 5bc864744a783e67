#pragma once
// Where this process sits in a multi-process run, from the environment torchrun,
// `hallo train --nproc` and SLURM set: RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR /
// MASTER_PORT, or srun's SLURM_PROCID / SLURM_STEP_NUM_TASKS / SLURM_LOCALID (MASTER_ADDR and
// MASTER_PORT still required under SLURM: the first node's address, any free port).
// Nothing set: one process (rank 0 of 1).
#include <string>

namespace hallo::trainer::dist {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun", "slurm" or "none"
  // torchrun's agent already serves the store at MASTER_PORT (it sets
  // TORCHELASTIC_USE_AGENT_STORE=True): every rank joins it as a client, under
  // torch.distributed's key prefix for the restart attempt (TORCHELASTIC_RESTART_COUNT).
  bool agent_store = false;
  int restart_count = 0;
  bool distributed() const { return world_size > 1; }
};

// Throws hallo::Error naming the variable when one is malformed or inconsistent
// (rank outside [0, world), a missing MASTER_ADDR/PORT for a multi-process run).
DistEnv dist_env_from_environment();

}  // namespace hallo::trainer::dist
