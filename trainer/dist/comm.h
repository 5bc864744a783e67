#pragma once
// The process group of a multi-process run: c10d's TCPStore rendezvous at
// MASTER_ADDR:MASTER_PORT (rank 0 serves it) and ProcessGroupGloo (CPU ranks) or
// ProcessGroupNCCL (CUDA builds, one GPU per rank). Every collective has a timeout: a
// dead or stuck rank makes the others fail with an error naming the operation instead
// of hanging. Only trainer/dist/ includes c10d headers.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/dist_env.h"

namespace hallo::trainer::dist {

// "auto": nccl when `device` is a GPU and this build has ProcessGroupNCCL, else gloo.
// Throws naming the choice when it cannot run here (nccl without NCCL or on the CPU).
std::string choose_backend(const std::string& requested, const c10::Device& device);
bool nccl_available();

class Comm {
 public:
  // Blocks until all `env.world_size` ranks have joined (or `timeout` passes). `device`:
  // where this rank computes (NCCL binds to it); `backend`: gloo, nccl or auto.
  static std::shared_ptr<Comm> connect(const DistEnv& env, std::chrono::milliseconds timeout,
                                       const std::string& backend = "auto",
                                       c10::Device device = c10::Device(c10::kCPU));
  ~Comm();

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& backend() const { return backend_; }
  // Where the group's collectives need their tensors (NCCL: this rank's GPU). The blocking
  // calls below take tensors anywhere and copy through it; the async ones need them there.
  c10::Device device() const { return device_; }

  // In-place, blocking.
  void broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what);
  void allreduce_sum(std::vector<at::Tensor>& tensors, const std::string& what);
  double sum(double local, const std::string& what);
  double max(double local, const std::string& what);
  void barrier(const std::string& what);
  // A barrier through the TCP store with its own (long) timeout, for phases where
  // rank 0 alone works for minutes (checkpoints, validation): Gloo's collectives keep
  // the group's short timeout, which its barrier cannot override.
  void barrier_long(const std::string& what, std::chrono::milliseconds timeout);
  // Every rank's bytes, in rank order (small payloads: RNG states, sampler positions).
  std::vector<std::string> allgather_bytes(const std::string& mine, const std::string& what);

  // Asynchronous all-reduce (sum) of one contiguous tensor; wait() blocks with the
  // timeout and throws hallo::Error naming `what` and this rank on failure.
  class Pending {
   public:
    void wait();
    // Non-blocking: true once the collective has finished (throws as wait() when it failed).
    bool done();
   private:
    friend class Comm;
    struct Impl;
    std::shared_ptr<Impl> impl_;
  };
  Pending allreduce_sum_async(at::Tensor flat, const std::string& what);
  // Asynchronous reduce (sum) of one contiguous tensor into `root`'s copy (ZeRO-2:
  // each gradient bucket goes to its owner only). Other ranks' tensors are scratch.
  Pending reduce_sum_async(at::Tensor flat, int root, const std::string& what);

 private:
  // A collective that `start` launches on the one-tensor list, as a Pending (comm.cpp).
  template <class Start>
  Pending start_async(at::Tensor flat, const std::string& what, Start&& start);

  struct Impl;
  std::unique_ptr<Impl> impl_;
  // Runs `op` on each tensor, through a copy on device_ when it lives elsewhere.
  template <class Op>
  void on_device(std::vector<at::Tensor>& tensors, Op&& op);

  int rank_ = 0, world_ = 1;
  int64_t long_barriers_ = 0;
  std::string backend_ = "gloo";
  c10::Device device_{c10::kCPU};
  std::chrono::milliseconds timeout_{60000};
};

}  // namespace hallo::trainer::dist
