#include "trainer/dist/comm.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace hallo::trainer::dist {

struct Comm::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

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

}  // namespace

std::shared_ptr<Comm> Comm::connect(const DistEnv& env, std::chrono::milliseconds timeout) {
  auto c = std::shared_ptr<Comm>(new Comm());
  c->impl_ = std::make_unique<Impl>();
  c->rank_ = env.rank;
  c->world_ = env.world_size;
  c->timeout_ = timeout;
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = static_cast<size_t>(env.world_size);
    o.waitWorkers = true;
    o.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    c->impl_->store = c10::make_intrusive<c10d::PrefixStore>("hallo", tcp);
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
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (const auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    fail("rank {}: cannot join the {}-process group at {}:{} ({}): {}", env.rank, env.world_size, env.master_addr,
         env.master_port, env.source, msg);
  }
  spdlog::debug("rank {}/{}: process group ready ({}:{})", env.rank, env.world_size, env.master_addr, env.master_port);
  return c;
}

Comm::~Comm() = default;

void Comm::broadcast(std::vector<at::Tensor>& tensors, int root, const std::string& what) {
  if (tensors.empty()) return;
  c10d::BroadcastOptions o;
  o.rootRank = root;
  o.timeout = timeout_;
  // One tensor per call: Gloo's broadcast takes a list of replicas of ONE tensor.
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    wait_work(impl_->pg->broadcast(one, o), rank_, what, timeout_);
  }
}

void Comm::allreduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  c10d::AllreduceOptions o;
  o.timeout = timeout_;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    wait_work(impl_->pg->allreduce(one, o), rank_, what, timeout_);
  }
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
  wait_work(impl_->pg->allreduce(t, o), rank_, what, timeout_);
  return t[0].item<double>();
}

void Comm::barrier(const std::string& what) {
  c10d::BarrierOptions o;
  o.timeout = timeout_;
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
