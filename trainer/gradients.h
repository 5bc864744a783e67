#pragma once
// The one place that turns each rank's gradients into the gradients the optimizer
// applies, and gradient-norm clipping. One process: nothing to reduce. The
// data-parallel reducer (c10d, bucketed, overlapped with backward) implements the
// same interface, so the step does not change.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "trainer/trainable.h"

namespace hallo::trainer {

// The training loop's one link to the other ranks: gradient reduction plus the few
// collectives the loop needs (initial weights, logged values, stop signals, the
// per-rank state a checkpoint holds). One process: every call is trivial.
class GradientReducer {
 public:
  virtual ~GradientReducer() = default;
  // Before a micro-step's backward. `sync` is false on accumulation micro-steps
  // (no communication until the last one).
  virtual void begin_backward(bool sync) {}
  // After the last micro-step's backward: gradients are final when this returns.
  virtual void finish() {}
  virtual int world_size() const { return 1; }
  virtual int rank() const { return 0; }
  // Mean over ranks of a scalar (for logging global values).
  virtual double mean(double local) { return local; }
  virtual double max(double local) { return local; }
  // Element-wise sum over ranks, in place (small tensors: per-parameter gradient norms).
  virtual void sum_in_place(at::Tensor& t) {}
  // Rank 0's values into every rank's tensors (in place).
  virtual void broadcast_from_root(std::vector<at::Tensor>& tensors) {}
  // Every rank's bytes in rank order (small: RNG states, sampler positions, step statistics).
  virtual std::vector<std::string> gather(const std::string& mine) { return {mine}; }
  virtual void barrier() {}
  // ZeRO-1: every parameter's value from the rank that owns (updated) it.
  virtual void broadcast_from_owners(const std::vector<NamedParam>& params, const std::vector<int>& owner) {}
  // ZeRO-2: after finish() this rank holds only the gradients of the parameters it
  // owns (zero_owners, trainer/zero.h); the optimizer must update exactly those. Not
  // sharded: every rank holds every gradient.
  virtual bool shards_gradients() const { return false; }
  // The order parameters are grouped into reduction buckets once learnt from a step
  // (empty before): checkpoints keep it so a resumed run reduces exactly as before.
  virtual std::vector<int64_t> bucket_order() const { return {}; }
  virtual void set_bucket_order(const std::vector<int64_t>& order) {}
  // Communication statistics (cumulative): seconds spent waiting for gradient
  // all-reduces after backward (not hidden by it), and buckets started during backward.
  virtual double exposed_seconds() const { return 0; }
  virtual double launched_during_backward() const { return 0; }
};

class LocalReducer : public GradientReducer {};

struct ClipResult {
  double total_norm = 0;  // L2 norm of all gradients before clipping
  double coef = 1;        // the factor every gradient was multiplied by
};

// torch.nn.utils.clip_grad_norm_ (torch 1.13), op for op: per-gradient L2 norms, the
// norm of their stack, coef = clamp(max_norm / (total + 1e-6), max=1), every gradient
// multiplied by it (also when it is 1). max_norm <= 0: only the norm is computed.
// With a reducer that shards gradients (ZeRO-2) each rank computes its own
// parameters' norms and the per-parameter norms are summed over ranks (each is
// non-zero on its owner only, so the sum is exact): the stack, the total and the
// coefficient are the bits an unsharded run computes.
ClipResult clip_grad_norm(const std::vector<NamedParam>& params, double max_norm, GradientReducer* sharded = nullptr);

// Name of the first parameter whose gradient (or value) is not finite, or "".
// Sharded gradients: the lowest rank's first finding (a collective: every rank calls it).
std::string first_nonfinite(const std::vector<NamedParam>& params, GradientReducer* sharded = nullptr);

}  // namespace hallo::trainer
