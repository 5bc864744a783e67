#pragma once
// ZeRO stage 1 (Rajbhandari et al. 2020): the optimizer state is split across ranks.
// Every parameter has one owning rank, which keeps its AdamW moments and updates it;
// the new values then go to every rank (one broadcast per owner). Gradients are still
// averaged in full on every rank, so the update equals unsharded training exactly.
// Owners balance the values per rank: parameters in order, each to the rank holding
// the fewest values so far (ties: lowest rank) — the same on every rank.
#include <vector>

#include "trainer/trainable.h"

namespace hallo::trainer {

std::vector<int> zero_owners(const std::vector<NamedParam>& params, int world_size);

}  // namespace hallo::trainer
