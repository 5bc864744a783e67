#include "trainer/zero.h"

#include <cstdint>

#include "core/error.h"

namespace hallo::trainer {

std::vector<int> zero_owners(const std::vector<NamedParam>& params, int world_size) {
  if (world_size < 1) fail("zero_owners: world size {}", world_size);
  std::vector<int64_t> load(static_cast<size_t>(world_size), 0);
  std::vector<int> owner(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    int best = 0;
    for (int r = 1; r < world_size; ++r)
      if (load[static_cast<size_t>(r)] < load[static_cast<size_t>(best)]) best = r;
    owner[i] = best;
    load[static_cast<size_t>(best)] += params[i].param.numel();
  }
  return owner;
}

}  // namespace hallo::trainer
