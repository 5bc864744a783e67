#include "trainer/dist/comm.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
// c10d's headers are .hpp through libtorch 2.9 and .h since (pytorch#162033).
#if __has_include(<torch/csrc/distributed/c10d/PrefixStore.h>)
#include <torch/csrc/distributed/c10d/PrefixStore.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.h>
#include <torch/csrc/distributed/c10d/TCPStore.h>
#else
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#include <torch/version.h>
#ifdef USE_C10D_NCCL
// CUDA libtorch: torch_cuda exports USE_C10D_NCCL to whoever links it.
#include <c10/cuda/CUDAFunctions.h>
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.h>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.h>
#else
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace hallo::trainer::dist {

// libtorch 2.x split the process group into a dispatcher (ProcessGroup) and its
// backends (Backend: Gloo, NCCL); 1.13's groups are ProcessGroups themselves. The
// collectives used here have the same signatures on both.
#if TORCH_VERSION_MAJOR >= 2
using Group = c10d::Backend;
#else
using Group = c10d::ProcessGroup;
#endif

struct Comm::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> pg;
};

bool nccl_available() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

std::string choose_backend(const std::string& requested, const c10::Device& device) {
  if (requested == "auto" || requested.empty()) return device.is_cuda() && nccl_available() ? "nccl" : "gloo";
  if (requested == "gloo") return requested;
  if (requested == "nccl") {
    if (!nccl_available()) fail("--dist-backend nccl: this libtorch has no ProcessGroupNCCL (a CPU build); use gloo");
    if (!device.is_cuda()) fail("--dist-backend nccl needs CUDA ranks (--device cuda), not {}", device.str());
    return requested;
  }
  fail("--dist-backend '{}': expected auto, gloo or nccl", requested);
}

struct Comm::Pending::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  int rank = 0;
  std::chrono::milliseconds timeout{60000};
};

namespace {

[[noreturn]] void collective_failed(int rank, const std::string& what, const std::exception& e) {
  std::string msg = e.what();
  if (const auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);  // drop c10's backtrace
  fail("rank {}: {} failed: {} (another rank died, was stopped or is stuck)", rank, what, msg);
}

void wait_work(const c10::intrusive_ptr<c10d::Work>& w, int rank, const std::string& what,
               std::chrono::milliseconds timeout) {
  try {
    if (!w->wait(timeout)) fail("rank {}: {} did not finish within {} s", rank, what, timeout.count() / 1000.0);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    collective_failed(rank, what, e);
  }
}

// 2.4+ serves the store with libuv by default. As torch.distributed, USE_LIBUV=0 opts out;
// a libtorch built without libuv (Debian's 2.6) refuses the default, and then the classic
// store, which speaks the same protocol, is used.
c10::intrusive_ptr<c10d::Store> open_tcp_store(const std::string& addr, c10d::TCPStoreOptions o) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  if (const char* uv = std::getenv("USE_LIBUV"); uv && std::strcmp(uv, "0") == 0) o.useLibUV = false;
  if (o.useLibUV) {
    try {
      return c10::make_intrusive<c10d::TCPStore>(addr, o);
    } catch (const std::exception& e) {
      if (std::string(e.what()).find("libuv") == std::string::npos) throw;
      o.useLibUV = false;
    }
  }
#endif
  return c10::make_intrusive<c10d::TCPStore>(addr, o);
}

}  // namespace

std::shared_ptr<Comm> Comm::connect(const DistEnv& env, std::chrono::milliseconds timeout, const std::string& backend,
                                    c10::Device device) {
  auto c = std::shared_ptr<Comm>(new Comm());
  c->impl_ = std::make_unique<Impl>();
  c->rank_ = env.rank;
  c->world_ = env.world_size;
  c->timeout_ = timeout;
  c->backend_ = choose_backend(backend, device);
  if (c->backend_ == "nccl") c->device_ = device;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    o.isServer = env.rank == 0 && !env.agent_store;  // under torchrun its agent serves MASTER_PORT
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    c10::intrusive_ptr<c10d::Store> tcp = open_tcp_store(env.master_addr, o);
    if (env.agent_store)  // torch.distributed's own prefix for a worker of this attempt
      tcp = c10::make_intrusive<c10d::PrefixStore>(fmt::format("/worker/attempt_{}", env.restart_count), tcp);
    c->impl_->store = c10::make_intrusive<c10d::PrefixStore>("hallo", tcp);
    if (c->backend_ == "nccl") {
#ifdef USE_C10D_NCCL
      // One GPU per rank, bound before the group exists. The group's timeout drives
      // NCCL's watchdog (the per-call timeouts are Gloo's).
      c10::cuda::set_device(device.index());
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      c->impl_->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(c->impl_->store, env.rank, env.world_size, opts);
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      // As torch.distributed: GLOO_SOCKET_IFNAME picks the interface; a loopback master
      // means a single machine; otherwise the address this host's name resolves to.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      c->impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(c->impl_->store, env.rank, env.world_size, opts);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    fail("rank {}: cannot join the {}-process group at {}:{} ({}): {}", env.rank, env.world_size, env.master_addr,
         env.master_port, env.source, msg);
  }
  spdlog::debug("rank {}/{}: {} process group ready ({}:{})", env.rank, env.world_size, c->backend_, env.master_addr,
                env.master_port);
  return c;
}

// NCCL: the group's destructor aborts its communicators. The trainer ends every run with
// a barrier, so no peer is inside a collective then. ProcessGroupNCCL::shutdown() (2.6: no
// arguments) is not called on purpose: this destructor also runs when a peer has died, and
// an abort never waits for a peer, which a graceful shutdown may.
Comm::~Comm() = default;

template <class Op>
void Comm::on_device(std::vector<at::Tensor>& tensors, Op&& op) {
  // One tensor per call: Gloo's collectives take a list of replicas of ONE tensor.
  for (auto& t : tensors) {
    if (t.device() == device_) {
      std::vector<at::Tensor> one{t};
      op(one);
    } else {
      std::vector<at::Tensor> one{t.to(device_)};
      op(one);
      t.copy_(one[0]);
    }
  }
}

void Comm::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = timeout_;
  on_device(tensors, [&](std::vector<at::Tensor>& one) { wait_work(impl_->pg->broadcast(one, o), rank_, what, timeout_); });
}

void Comm::allreduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  c10d::AllreduceOptions o;
  o.timeout = timeout_;
  on_device(tensors, [&](std::vector<at::Tensor>& one) { wait_work(impl_->pg->allreduce(one, o), rank_, what, timeout_); });
}

double Comm::sum(double local, const std::string& what) {
  std::vector<at::Tensor> t{at::full({1}, local, at::kDouble)};
  allreduce_sum(t, what);
  return t[0].item<double>();
}

double Comm::max(double local, const std::string& what) {
  std::vector<at::Tensor> t{at::full({1}, local, at::kDouble)};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::MAX;
  o.timeout = timeout_;
  on_device(t, [&](std::vector<at::Tensor>& one) { wait_work(impl_->pg->allreduce(one, o), rank_, what, timeout_); });
  return t[0].item<double>();
}

void Comm::barrier(const std::string& what) {
  c10d::BarrierOptions o;
  o.timeout = timeout_;
  if (device_.is_cuda()) o.device_ids = {device_.index()};  // NCCL would guess the GPU from the rank
  wait_work(impl_->pg->barrier(o), rank_, what, timeout_);
}

void Comm::barrier_long(const std::string& what, std::chrono::milliseconds timeout) {
  const int64_t n = long_barriers_++;
  std::vector<std::string> keys;
  for (int r = 0; r < world_; ++r) keys.push_back(fmt::format("barrier/{}/{}", n, r));
  try {
    impl_->store->set(keys[static_cast<size_t>(rank_)], std::vector<uint8_t>{1});
    impl_->store->wait(keys, timeout);
  } catch (const std::exception& e) {
    collective_failed(rank_, what, e);
  }
  // Everyone has arrived: a Gloo barrier (short timeout is fine now) keeps rank 0, which
  // hosts the store, from exiting before the last rank's wait has been answered.
  barrier(what);
}

std::vector<std::string> Comm::allgather_bytes(const std::string& mine, const std::string& what) {
  // Lengths first, then one padded uint8 buffer per rank.
  std::vector<at::Tensor> len{at::zeros({world_}, at::kLong)};
  len[0][rank_] = static_cast<int64_t>(mine.size());
  allreduce_sum(len, what + " (sizes)");
  const int64_t cap = len[0].max().item<int64_t>();
  at::Tensor all = at::zeros({world_, std::max<int64_t>(cap, 1)}, at::kByte);
  if (!mine.empty()) std::memcpy(all[rank_].data_ptr<uint8_t>(), mine.data(), mine.size());
  std::vector<at::Tensor> t{all};
  allreduce_sum(t, what);  // every row is zero but its owner's: the sum is the gather
  std::vector<std::string> out;
  for (int r = 0; r < world_; ++r)
    out.emplace_back(reinterpret_cast<const char*>(all[r].data_ptr<uint8_t>()), static_cast<size_t>(len[0][r].item<int64_t>()));
  return out;
}

// The Pending waits with the group's timeout and names `what` when it fails.
template <class Start>
Comm::Pending Comm::start_async(at::Tensor flat, const std::string& what, Start&& start) {
  if (flat.device() != device_)
    fail("rank {}: {}: the tensor is on {}, the {} group needs {}", rank_, what, flat.device().str(), backend_,
         device_.str());
  Pending p;
  p.impl_ = std::make_shared<Pending::Impl>();
  p.impl_->what = what;
  p.impl_->rank = rank_;
  p.impl_->timeout = timeout_;
  std::vector<at::Tensor> one{std::move(flat)};
  try {
    p.impl_->work = start(one);
  } catch (const std::exception& e) {
    collective_failed(rank_, what, e);
  }
  return p;
}

Comm::Pending Comm::allreduce_sum_async(at::Tensor flat, const std::string& what) {
  c10d::AllreduceOptions o;
  o.timeout = timeout_;
  return start_async(std::move(flat), what, [&](std::vector<at::Tensor>& t) { return impl_->pg->allreduce(t, o); });
}

Comm::Pending Comm::reduce_sum_async(at::Tensor flat, int root, const std::string& what) {
  c10d::ReduceOptions o;
  o.rootRank = root;
  o.timeout = timeout_;
  return start_async(std::move(flat), what, [&](std::vector<at::Tensor>& t) { return impl_->pg->reduce(t, o); });
}

bool Comm::Pending::done() {
  if (!impl_ || !impl_->work) return true;
  if (!impl_->work->isCompleted()) return false;
  wait();
  return true;
}

void Comm::Pending::wait() {
  if (!impl_ || !impl_->work) return;
  wait_work(impl_->work, impl_->rank, impl_->what, impl_->timeout);
  impl_->work.reset();
}

}  // namespace hallo::trainer::dist
