#include "trainer/dist/c10d_reducer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <chrono>
#include <mutex>

#include "core/error.h"

namespace hallo::trainer::dist {

namespace {

struct Slot {
  size_t param = 0;      // index into params
  int64_t offset = 0, numel = 0;
};

struct Bucket {
  std::vector<Slot> slots;
  at::Tensor flat;       // [values..., one flag per slot]
  int64_t values = 0;
  size_t ready = 0;
  bool launched = false;
  Comm::Pending pending;
};

}  // namespace

struct C10dReducer::Impl {
  std::shared_ptr<Comm> comm;
  std::vector<NamedParam> params;
  std::vector<Bucket> buckets;
  std::vector<std::pair<size_t, size_t>> where;  // param -> (bucket, slot)
  std::vector<bool> seen;                        // param got its hook this backward
  std::vector<unsigned> hooks;
  bool sync = false;
  size_t next_launch = 0;
  size_t launched_early = 0, total_launched = 0;
  double exposed = 0;
  std::mutex mu;

  void fill(Bucket& b, size_t s, const at::Tensor& grad) {
    const Slot& sl = b.slots[s];
    b.flat.narrow(0, sl.offset, sl.numel).copy_(grad.reshape({-1}));
    b.flat[b.values + static_cast<int64_t>(s)].fill_(1.0);
  }
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].slots.size()) {
      Bucket& b = buckets[next_launch];
      b.pending = comm->allreduce_sum_async(b.flat, fmt::format("all-reduce of gradient bucket {}", next_launch));
      b.launched = true;
      ++next_launch;
    }
  }
};

C10dReducer::C10dReducer(std::shared_ptr<Comm> comm, const std::vector<NamedParam>& params, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.comm = std::move(comm);
  s.params = params;
  s.where.resize(params.size());
  s.seen.assign(params.size(), false);
  // Reverse parameter order: backward reaches the last layers first.
  Bucket cur;
  int64_t bytes = 0;
  auto close = [&] {
    if (cur.slots.empty()) return;
    cur.values = bytes / 4;
    cur.flat = at::zeros({cur.values + static_cast<int64_t>(cur.slots.size())}, at::kFloat);
    s.buckets.push_back(std::move(cur));
    cur = Bucket();
    bytes = 0;
  };
  for (size_t i = params.size(); i-- > 0;) {
    const at::Tensor& p = params[i].param;
    if (p.scalar_type() != at::kFloat) fail("data-parallel reduction: '{}' is {}, expected float32", params[i].name, c10::toString(p.scalar_type()));
    cur.slots.push_back({i, bytes / 4, p.numel()});
    s.where[i] = {s.buckets.size(), cur.slots.size() - 1};
    bytes += p.numel() * 4;
    if (bytes >= bucket_bytes) close();
  }
  close();
  for (size_t i = 0; i < params.size(); ++i) {
    at::Tensor p = params[i].param;
    Impl* impl = impl_.get();
    s.hooks.push_back(p.register_hook([impl, i](const at::Tensor& g) {
      if (!impl->sync) return;
      std::lock_guard<std::mutex> lock(impl->mu);
      auto [b, slot] = impl->where[i];
      if (impl->buckets[b].launched)
        fail("data-parallel reduction: '{}' received a second gradient after its bucket's all-reduce started "
             "(a parameter used twice in one backward); not supported",
             impl->params[i].name);
      const at::Tensor& prev = impl->params[i].param.grad();
      // Autograd adds g to .grad after this hook: the bucket gets the final sum now.
      impl->fill(impl->buckets[b], slot, prev.defined() ? prev + g : g);
      if (!impl->seen[i]) {
        impl->seen[i] = true;
        impl->buckets[b].ready += 1;
      }
      impl->launch_ready();
    }));
  }
}

C10dReducer::~C10dReducer() {
  for (size_t i = 0; i < impl_->params.size() && i < impl_->hooks.size(); ++i) {
    try {
      impl_->params[i].param.remove_hook(impl_->hooks[i]);
    } catch (...) {
    }
  }
}

void C10dReducer::begin_backward(bool sync) {
  auto& s = *impl_;
  s.sync = sync;
  if (!sync) return;
  for (auto& b : s.buckets) {
    b.flat.zero_();
    b.ready = 0;
    b.launched = false;
  }
  s.seen.assign(s.params.size(), false);
  s.next_launch = 0;
}

void C10dReducer::finish() {
  auto& s = *impl_;
  if (!s.sync) fail("data-parallel reduction: finish() without a synchronising micro-step");
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.launched_early += s.next_launch;
    s.total_launched += s.buckets.size();
    // Parameters without a gradient this step: what earlier micro-steps accumulated, else zeros.
    for (size_t i = 0; i < s.params.size(); ++i) {
      if (s.seen[i]) continue;
      auto [b, slot] = s.where[i];
      const at::Tensor& prev = s.params[i].param.grad();
      if (prev.defined()) s.fill(s.buckets[b], slot, prev);
      s.seen[i] = true;
      s.buckets[b].ready += 1;
    }
    s.launch_ready();
  }
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : s.buckets) b.pending.wait();
  s.exposed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double inv = 1.0 / s.comm->world_size();
  for (auto& b : s.buckets) {
    b.flat.narrow(0, 0, b.values).mul_(inv);
    const at::Tensor flags = b.flat.narrow(0, b.values, static_cast<int64_t>(b.slots.size()));
    for (size_t k = 0; k < b.slots.size(); ++k) {
      const Slot& sl = b.slots[k];
      at::Tensor p = s.params[sl.param].param;
      if (flags[static_cast<int64_t>(k)].item<float>() > 0)
        p.mutable_grad() = b.flat.narrow(0, sl.offset, sl.numel).view(p.sizes());
      else
        p.mutable_grad() = at::Tensor();  // no rank had one: AdamW skips it, as torch would
    }
  }
  s.sync = false;
}

int C10dReducer::world_size() const { return impl_->comm->world_size(); }
int C10dReducer::rank() const { return impl_->comm->rank(); }
double C10dReducer::mean(double local) { return impl_->comm->sum(local, "mean of a logged value") / world_size(); }
double C10dReducer::max(double local) { return impl_->comm->max(local, "maximum of a step flag"); }
void C10dReducer::broadcast_from_root(std::vector<at::Tensor>& tensors) {
  impl_->comm->broadcast(tensors, 0, "broadcast of rank 0's weights");
}
std::vector<std::string> C10dReducer::gather(const std::string& mine) {
  return impl_->comm->allgather_bytes(mine, "gather of per-rank state");
}
// Around rank 0's file work and validation, which may take minutes at full size.
void C10dReducer::barrier() { impl_->comm->barrier_long("barrier while rank 0 writes or validates", std::chrono::minutes(30)); }
void C10dReducer::broadcast_from_owners(const std::vector<NamedParam>& params, const std::vector<int>& owner) {
  // Per owner, its parameters in order, concatenated into chunks of at most 64 MiB
  // (a full-size owner's share is ~1 GiB: one flat copy would eat ZeRO's saving).
  at::NoGradGuard no_grad;
  constexpr int64_t kChunk = (int64_t{64} << 20) / 4;
  for (int r = 0; r < world_size(); ++r) {
    std::vector<size_t> group;
    int64_t values = 0;
    auto flush = [&] {
      if (group.empty()) return;
      std::vector<at::Tensor> parts;
      for (size_t i : group) parts.push_back(params[i].param.detach().reshape({-1}));
      std::vector<at::Tensor> flat{parts.size() == 1 ? parts.front().clone() : at::cat(parts)};
      impl_->comm->broadcast(flat, r, fmt::format("broadcast of rank {}'s updated parameters (ZeRO-1)", r));
      if (r != rank()) {
        int64_t off = 0;
        for (size_t i : group) {
          at::Tensor p = params[i].param.detach();
          p.copy_(flat[0].narrow(0, off, p.numel()).view(p.sizes()));
          off += p.numel();
        }
      }
      group.clear();
      values = 0;
    };
    for (size_t i = 0; i < params.size(); ++i) {
      if (owner[i] != r) continue;
      if (values > 0 && values + params[i].param.numel() > kChunk) flush();
      group.push_back(i);
      values += params[i].param.numel();
    }
    flush();
  }
}

size_t C10dReducer::buckets() const { return impl_->buckets.size(); }
double C10dReducer::exposed_seconds() const { return impl_->exposed; }
double C10dReducer::launched_during_backward() const {
  return impl_->total_launched ? static_cast<double>(impl_->launched_early) / impl_->total_launched : 0;
}

}  // namespace hallo::trainer::dist
