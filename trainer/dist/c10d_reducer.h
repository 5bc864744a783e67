#pragma once
// Data-parallel gradient reduction over c10d: the GradientReducer of a
// multi-process run (trainer/gradients.h). Gradients of the trainable parameters
// only, in size-capped buckets, each reduced as soon as its last gradient arrives,
// while the rest of backward still runs. Buckets are launched strictly in index
// order so every rank issues the same collectives in the same order. On
// accumulation micro-steps (sync = false) nothing is communicated and gradients
// accumulate in .grad as usual.
//
// Bucket order: reverse parameter order for the first step; from then on the order
// in which rank 0's gradients arrived in that step (broadcast, so every rank builds
// the same buckets; kept in checkpoints). Parameters for which no rank produced a
// gradient at the last step (motion modules that never run) do not hold their
// bucket back; should one get a gradient after all, or a parameter get a second one
// after its bucket left, those arrive "late" and go in one extra all-reduce in
// finish(). Together this lets most buckets leave during backward (DDP's bucket
// rebuilding and unused-parameter handling, decided by the same reduced flags on
// every rank instead of a graph traversal, which reentrant checkpointing hides).
//
// On the synchronising micro-step a post-hook on each parameter's AccumulateGrad
// node moves the freshly accumulated .grad into its bucket and drops it, so a rank
// never holds a gradient twice; buckets are allocated when their first gradient
// arrives and, after finish(), the parameters' .grad are views into them (freed
// when the optimizer clears the gradients): nothing is held between steps.
// A parameter that got no gradient on this rank (condition dropout differs per rank)
// contributes zeros; one that got none on ANY rank keeps no gradient, so AdamW skips
// it as torch does.
//
// shard_gradients (ZeRO-2, Rajbhandari et al. 2020): parameters have owners
// (zero_owners, the same as ZeRO-1's) and each bucket is split into one segment per
// owner, each reduced to its owner only (c10d reduce: Gloo in libtorch 1.13 has no
// reduce_scatter). A rank frees the other ranks' segments as soon as their reduce
// has completed, so it holds ~1/N of the gradients plus what is in flight, and after
// finish() only its own parameters' gradients.
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/comm.h"
#include "trainer/gradients.h"
#include "trainer/trainable.h"

namespace hallo::trainer::dist {

class C10dReducer : public GradientReducer {
 public:
  C10dReducer(std::shared_ptr<Comm> comm, const std::vector<NamedParam>& params, int64_t bucket_bytes = int64_t{25} << 20,
              bool shard_gradients = false);
  ~C10dReducer() override;

  void begin_backward(bool sync) override;
  void finish() override;
  int world_size() const override;
  int rank() const override;
  double mean(double local) override;
  double max(double local) override;
  void sum_in_place(at::Tensor& t) override;
  void broadcast_from_root(std::vector<at::Tensor>& tensors) override;
  std::vector<std::string> gather(const std::string& mine) override;
  void barrier() override;
  void broadcast_from_owners(const std::vector<NamedParam>& params, const std::vector<int>& owner) override;
  bool shards_gradients() const override;
  std::vector<int64_t> bucket_order() const override;
  void set_bucket_order(const std::vector<int64_t>& order) override;

  size_t buckets() const;
  // Seconds finish() waited for communication (what backward did not hide), summed.
  double exposed_seconds() const override;
  double launched_during_backward() const override;  // fraction of buckets launched before finish()
  // Most bucket bytes this rank held at once during the last synchronising backward
  // (ZeRO-2: its own buckets plus the others' in flight).
  int64_t peak_bucket_bytes() const;
  // Steps that needed the extra all-reduce for gradients arriving after their bucket's.
  int64_t late_steps() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::trainer::dist
