#include "trainer/dist/c10d_reducer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <mutex>
#include <utility>

#include "core/error.h"
#include "trainer/zero.h"

namespace hallo::trainer::dist {

namespace {

struct Slot {
  size_t param = 0;      // index into params
  int64_t offset = 0, numel = 0;  // within its segment
};

// The part of a bucket one rank receives (ZeRO-2), or the whole bucket (owner -1:
// all-reduced to every rank). Its own tensor, so a rank frees the others' segments
// as soon as they are sent.
struct Segment {
  int owner = -1;
  std::vector<Slot> slots;
  int64_t values = 0;
  at::Tensor flat;       // allocated when the first gradient arrives
  Comm::Pending pending;
  int64_t bytes() const { return values * 4; }
};

struct Bucket {
  std::vector<Segment> segs;
  size_t params = 0, ready = 0;
  bool launched = false;
};

struct Where {
  size_t bucket = 0, seg = 0, slot = 0;
};

// Runs after autograd's AccumulateGrad has written a parameter's .grad.
struct AfterAccumulate : torch::autograd::FunctionPostHook {
  explicit AfterAccumulate(std::function<void()> f) : fn(std::move(f)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    fn();
    return outputs;
  }
  std::function<void()> fn;
};

}  // namespace

struct C10dReducer::Impl {
  std::shared_ptr<Comm> comm;
  std::vector<NamedParam> params;
  at::TensorOptions bucket_options = at::TensorOptions().dtype(at::kFloat);  // on the parameters' device
  bool shard = false;
  int64_t bucket_bytes = 0;
  std::vector<int> owner;                        // ZeRO-2: each parameter's rank (zero_owners)
  std::vector<int64_t> order;                    // parameters in bucket order
  bool order_learned = false;
  std::vector<int64_t> arrival;                  // first synchronising backward: the order gradients came in
  std::vector<Bucket> buckets;
  std::vector<Where> where;
  std::vector<bool> seen;                        // counted towards its bucket's readiness this backward
  std::vector<bool> got;                         // this rank produced a gradient for it this step
  // No rank produced a gradient for these at the last synchronising step (motion
  // modules that never run, a reference net every rank skipped): they do not hold
  // their bucket back. Every rank derives it from the same reduced flags.
  std::vector<bool> expect_none;
  // Gradients that arrived after their bucket's reduction had started (a parameter
  // used again late in backward, or one of expect_none after all): reduced in one
  // extra collective in finish().
  std::vector<at::Tensor> late;
  // The parameters' AccumulateGrad nodes: a variable holds its own only weakly, and
  // the hooks live on the node, so they are kept alive here.
  // (shared_ptr<Node> through libtorch 2.12, an intrusive_ptr since: whatever grad_accumulator returns)
  std::vector<decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()))> accumulators;
  std::vector<uintptr_t> hook_keys;
  bool sync = false, in_backward = false;
  size_t next_launch = 0, next_release = 0;
  size_t launched_early = 0, total_launched = 0;
  double exposed = 0;
  int64_t live_bytes = 0, peak_bytes = 0, late_steps = 0;
  int64_t foreign_bytes = 0, foreign_cap = 0;  // other ranks' segments held (ZeRO-2)
  std::mutex mu;

  bool mine(const Segment& g) const { return g.owner < 0 || g.owner == comm->rank(); }

  // Buckets of at most bucket_bytes along `order`; inside each, one segment per owner.
  void build() {
    buckets.clear();
    where.assign(params.size(), Where{});
    std::vector<size_t> cur;
    int64_t bytes = 0;
    auto close = [&] {
      if (cur.empty()) return;
      Bucket b;
      b.params = cur.size();
      const int first = shard ? 0 : -1, last = shard ? comm->world_size() - 1 : -1;
      for (int r = first; r <= last; ++r) {
        Segment g;
        g.owner = r;
        for (size_t i : cur) {
          if (shard && owner[i] != r) continue;
          where[i] = {buckets.size(), b.segs.size(), g.slots.size()};
          g.slots.push_back({i, g.values, params[i].param.numel()});
          g.values += params[i].param.numel();
        }
        if (!g.slots.empty()) b.segs.push_back(std::move(g));
      }
      buckets.push_back(std::move(b));
      cur.clear();
      bytes = 0;
    };
    for (int64_t i : order) {
      cur.push_back(static_cast<size_t>(i));
      bytes += params[static_cast<size_t>(i)].param.numel() * 4;
      if (bytes >= bucket_bytes) close();
    }
    close();
  }
  void allocate(Segment& g) {
    if (g.flat.defined()) return;
    g.flat = at::zeros({g.values}, bucket_options);
    live_bytes += g.bytes();
    if (!mine(g)) foreign_bytes += g.bytes();
    peak_bytes = std::max(peak_bytes, live_bytes);
  }
  void release(Segment& g) {
    if (!g.flat.defined()) return;
    g.flat = at::Tensor();
    live_bytes -= g.bytes();
    if (!mine(g)) foreign_bytes -= g.bytes();
  }
  void count_ready(size_t i) {
    if (seen[i]) return;
    seen[i] = true;
    buckets[where[i].bucket].ready += 1;
  }
  // Param i's .grad holds everything this rank accumulated for it since the last
  // take: into its bucket (or the late list), and .grad is dropped.
  void take(size_t i) {
    at::Tensor& g = params[i].param.mutable_grad();
    if (g.defined()) {
      if (in_backward && !got[i] && !order_learned) arrival.push_back(static_cast<int64_t>(i));
      got[i] = true;
      const Where w = where[i];
      Bucket& bk = buckets[w.bucket];
      if (bk.launched) {
        late[i] = late[i].defined() ? late[i] + g : g;
      } else {
        Segment& sg = bk.segs[w.seg];
        allocate(sg);
        const Slot& sl = sg.slots[w.slot];
        sg.flat.narrow(0, sl.offset, sl.numel).add_(g.reshape({-1}));
      }
      g = at::Tensor();
    }
    count_ready(i);
  }
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].params) {
      Bucket& b = buckets[next_launch];
      for (auto& g : b.segs) {
        allocate(g);  // no gradient on this rank: it still contributes zeros
        g.pending = g.owner < 0
                        ? comm->allreduce_sum_async(g.flat, fmt::format("all-reduce of gradient bucket {}", next_launch))
                        : comm->reduce_sum_async(g.flat, g.owner,
                                                 fmt::format("reduce of gradient bucket {} to rank {} (ZeRO-2)", next_launch, g.owner));
      }
      b.launched = true;
      ++next_launch;
    }
  }
  // ZeRO-2: other ranks' segments whose reduce has completed are freed right away;
  // more than foreign_cap bytes of them in flight (this rank ahead of another): wait
  // for the oldest, so a rank's gradient memory stays ~1/N + the cap.
  void release_sent() {
    if (!shard) return;
    while (next_release < next_launch) {
      for (auto& g : buckets[next_release].segs) {
        if (mine(g) || !g.flat.defined()) continue;
        if (foreign_bytes <= foreign_cap && !g.pending.done()) return;
        g.pending.wait();
        release(g);
      }
      ++next_release;
    }
  }
  // After the first synchronising step: buckets in the order rank 0's gradients
  // arrived (the same on every rank), so each fills as early as backward allows.
  void learn_order() {
    const int64_t n = static_cast<int64_t>(params.size());
    std::vector<at::Tensor> t{at::full({n}, -1, at::kLong)};
    int64_t* a = t[0].data_ptr<int64_t>();
    std::copy(arrival.begin(), arrival.end(), a);
    comm->broadcast(t, 0, "broadcast of the gradient arrival order");
    std::vector<int64_t> learned;
    std::vector<bool> placed(params.size(), false);
    for (int64_t k = 0; k < n; ++k) {
      const int64_t i = a[k];
      if (i < 0) break;
      learned.push_back(i);
      placed[static_cast<size_t>(i)] = true;
    }
    for (int64_t i : order)  // parameters without a gradient yet: last, as before
      if (!placed[static_cast<size_t>(i)]) learned.push_back(i);
    order = std::move(learned);
    order_learned = true;
    arrival.clear();
    build();
  }
};

C10dReducer::C10dReducer(std::shared_ptr<Comm> comm, const std::vector<NamedParam>& params, int64_t bucket_bytes,
                         bool shard_gradients)
    : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.comm = std::move(comm);
  s.params = params;
  if (!params.empty()) {
    const c10::Device d = params.front().param.device();
    for (const auto& p : params)
      if (p.param.device() != d) fail("data-parallel reduction: '{}' is on {}, others on {}", p.name, p.param.device().str(), d.str());
    if (d != s.comm->device())
      fail("data-parallel reduction: the parameters are on {}, the {} group reduces on {}", d.str(), s.comm->backend(),
           s.comm->device().str());
    s.bucket_options = s.bucket_options.device(d);
  }
  s.shard = shard_gradients && s.comm->world_size() > 1;
  s.bucket_bytes = bucket_bytes;
  s.foreign_cap = 2 * bucket_bytes;
  s.seen.assign(params.size(), false);
  s.got.assign(params.size(), false);
  s.expect_none.assign(params.size(), false);
  s.late.resize(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i].param;
    if (p.scalar_type() != at::kFloat) fail("data-parallel reduction: '{}' is {}, expected float32", params[i].name, c10::toString(p.scalar_type()));
    if (!p.requires_grad() || !p.is_leaf()) fail("data-parallel reduction: '{}' is not a trainable leaf tensor", params[i].name);
  }
  if (s.shard) s.owner = zero_owners(params, s.comm->world_size());
  // Until the first step has shown the real order: reverse parameter order (backward
  // reaches the last layers first).
  for (size_t i = params.size(); i-- > 0;) s.order.push_back(static_cast<int64_t>(i));
  s.build();
  Impl* impl = impl_.get();
  for (size_t i = 0; i < params.size(); ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(params[i].param);
    if (!acc) fail("data-parallel reduction: '{}' has no gradient accumulator", params[i].name);
    s.hook_keys.push_back(acc->add_post_hook(std::make_unique<AfterAccumulate>([impl, i] {
      if (!impl->sync) return;
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->take(i);
      impl->launch_ready();
      impl->release_sent();
    })));
    s.accumulators.push_back(std::move(acc));
  }
}

C10dReducer::~C10dReducer() {
  auto& s = *impl_;
  for (size_t i = 0; i < s.accumulators.size(); ++i) s.accumulators[i]->del_post_hook(s.hook_keys[i]);
  // Collectives still in flight (an error unwound the step) must not outlive their buffers.
  for (auto& b : s.buckets)
    for (auto& g : b.segs) {
      try {
        g.pending.wait();
      } catch (...) {
      }
    }
}

void C10dReducer::begin_backward(bool sync) {
  auto& s = *impl_;
  s.sync = sync;
  if (!sync) return;
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& b : s.buckets) {
    for (auto& g : b.segs) s.release(g);
    b.ready = 0;
    b.launched = false;
  }
  s.seen.assign(s.params.size(), false);
  s.got.assign(s.params.size(), false);
  for (auto& t : s.late) t = at::Tensor();
  s.arrival.clear();
  s.next_launch = 0;
  s.next_release = 0;
  s.peak_bytes = s.live_bytes;  // 0: every segment was just released
  // .grad left by accumulation micro-steps is taken in finish(), not counted as arrival.
  s.in_backward = true;
  for (size_t i = 0; i < s.params.size(); ++i)
    if (s.expect_none[i]) s.count_ready(i);
  s.launch_ready();
}

void C10dReducer::finish() {
  auto& s = *impl_;
  if (!s.sync) fail("data-parallel reduction: finish() without a synchronising micro-step");
  const int64_t n = static_cast<int64_t>(s.params.size());
  at::Tensor flags = at::zeros({2, n}, at::kFloat);  // [had a gradient here; had a late one here]
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.in_backward = false;
    s.launched_early += s.next_launch;
    s.total_launched += s.buckets.size();
    // What earlier micro-steps accumulated for parameters without a gradient in this backward.
    for (size_t i = 0; i < s.params.size(); ++i) s.take(i);
    s.launch_ready();
    float* f = flags.data_ptr<float>();
    for (size_t i = 0; i < s.params.size(); ++i) {
      f[i] = s.got[i] ? 1.f : 0.f;
      f[static_cast<size_t>(n) + i] = s.late[i].defined() ? 1.f : 0.f;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<at::Tensor> one{flags};
    s.comm->allreduce_sum(one, "all-reduce of which parameters got gradients");
  }
  for (auto& b : s.buckets)
    for (auto& g : b.segs) g.pending.wait();
  s.exposed += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const at::Tensor any = flags[0].gt(0).contiguous(), any_late = flags[1].gt(0).contiguous();
  const bool* any_p = any.data_ptr<bool>();
  const bool* late_p = any_late.data_ptr<bool>();
  // Late gradients: one all-reduce of those parameters, in parameter order, on every rank.
  at::Tensor late_flat;
  std::vector<int64_t> late_offset(s.params.size(), -1);
  int64_t late_total = 0;
  for (size_t i = 0; i < s.params.size(); ++i)
    if (late_p[i]) {
      late_offset[i] = late_total;
      late_total += s.params[i].param.numel();
    }
  if (late_total > 0) {
    late_flat = at::zeros({late_total}, s.bucket_options);
    for (size_t i = 0; i < s.params.size(); ++i)
      if (s.late[i].defined()) late_flat.narrow(0, late_offset[i], s.params[i].param.numel()).copy_(s.late[i].reshape({-1}));
    for (auto& t : s.late) t = at::Tensor();
    std::vector<at::Tensor> one{late_flat};
    s.comm->allreduce_sum(one, "all-reduce of gradients that arrived after their bucket's");
    ++s.late_steps;
  }
  const double inv = 1.0 / s.comm->world_size();
  for (auto& b : s.buckets)
    for (auto& g : b.segs) {
      if (!s.mine(g)) {
        for (const Slot& sl : g.slots) s.params[sl.param].param.mutable_grad() = at::Tensor();
        s.release(g);
        continue;
      }
      for (const Slot& sl : g.slots) {
        at::Tensor p = s.params[sl.param].param;
        if (!any_p[sl.param]) {
          p.mutable_grad() = at::Tensor();  // no rank had one: AdamW skips it, as torch would
          continue;
        }
        at::Tensor v = g.flat.narrow(0, sl.offset, sl.numel);
        if (late_offset[sl.param] >= 0) v.add_(late_flat.narrow(0, late_offset[sl.param], sl.numel));
        p.mutable_grad() = v.view(p.sizes());
      }
      g.flat.mul_(inv);
      s.release(g);  // the gradients are views: the storage goes when the optimizer clears them
    }
  for (size_t i = 0; i < s.params.size(); ++i) s.expect_none[i] = !any_p[i];
  if (!s.order_learned) s.learn_order();
  s.sync = false;
}

int C10dReducer::world_size() const { return impl_->comm->world_size(); }
int C10dReducer::rank() const { return impl_->comm->rank(); }
double C10dReducer::mean(double local) { return impl_->comm->sum(local, "mean of a logged value") / world_size(); }
double C10dReducer::max(double local) { return impl_->comm->max(local, "maximum of a step flag"); }
void C10dReducer::sum_in_place(at::Tensor& t) {
  std::vector<at::Tensor> one{t};
  impl_->comm->allreduce_sum(one, "sum of per-parameter gradient norms (ZeRO-2)");
}
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
      impl_->comm->broadcast(flat, r, fmt::format("broadcast of rank {}'s updated parameters (ZeRO)", r));
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

bool C10dReducer::shards_gradients() const { return impl_->shard; }
std::vector<int64_t> C10dReducer::bucket_order() const { return impl_->order_learned ? impl_->order : std::vector<int64_t>{}; }
void C10dReducer::set_bucket_order(const std::vector<int64_t>& order) {
  auto& s = *impl_;
  std::vector<bool> placed(s.params.size(), false);
  for (int64_t i : order) {
    if (i < 0 || i >= static_cast<int64_t>(s.params.size()) || placed[static_cast<size_t>(i)])
      fail("data-parallel reduction: a bucket order that is not a permutation of the {} trainable parameters", s.params.size());
    placed[static_cast<size_t>(i)] = true;
  }
  if (order.size() != s.params.size())
    fail("data-parallel reduction: a bucket order of {} parameters for {}", order.size(), s.params.size());
  s.order = order;
  s.order_learned = true;
  s.build();
}
int64_t C10dReducer::late_steps() const { return impl_->late_steps; }

size_t C10dReducer::buckets() const { return impl_->buckets.size(); }
double C10dReducer::exposed_seconds() const { return impl_->exposed; }
double C10dReducer::launched_during_backward() const {
  return impl_->total_launched ? static_cast<double>(impl_->launched_early) / impl_->total_launched : 0;
}
int64_t C10dReducer::peak_bucket_bytes() const { return impl_->peak_bytes; }

}  // namespace hallo::trainer::dist
