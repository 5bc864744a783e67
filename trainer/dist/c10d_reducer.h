#pragma once
// Data-parallel gradient reduction over c10d: the GradientReducer of a
// multi-process run (trainer/gradients.h). Gradients of the trainable parameters
// only, in size-capped buckets (parameters in reverse order, the order backward
// produces them), each all-reduced as soon as its last gradient arrives, while the
// rest of backward still runs. Buckets are launched strictly in index order so every
// rank issues the same collectives in the same order. On accumulation micro-steps
// (sync = false) nothing is communicated.
//
// A parameter that got no gradient on this rank (condition dropout differs per rank)
// contributes zeros; one that got none on ANY rank keeps no gradient, so AdamW skips
// it as torch does. Each bucket carries one "had a gradient" flag per parameter
// after its values, summed in the same collective.
#include <memory>
#include <string>
#include <vector>

#include "trainer/dist/comm.h"
#include "trainer/gradients.h"
#include "trainer/trainable.h"

namespace hallo::trainer::dist {

class C10dReducer : public GradientReducer {
 public:
  C10dReducer(std::shared_ptr<Comm> comm, const std::vector<NamedParam>& params, int64_t bucket_bytes = int64_t{25} << 20);
  ~C10dReducer() override;

  void begin_backward(bool sync) override;
  void finish() override;
  int world_size() const override;
  int rank() const override;
  double mean(double local) override;
  double max(double local) override;
  void broadcast_from_root(std::vector<at::Tensor>& tensors) override;
  std::vector<std::string> gather(const std::string& mine) override;
  void barrier() override;
  void broadcast_from_owners(const std::vector<NamedParam>& params, const std::vector<int>& owner) override;

  size_t buckets() const;
  // Seconds finish() waited for communication (what backward did not hide), summed.
  double exposed_seconds() const override;
  double launched_during_backward() const override;  // fraction of buckets launched before finish()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::trainer::dist
