#pragma once
// Which clips carry VAE latents. index.json does not say, so the samplers read
// each clip's `latent_channels` attribute (metadata only: no dataset is read or
// decompressed) once, to decide whether batches can carry latents.
#include <vector>

#include "data/shard/shard_reader.h"

namespace hallo::data {

// latent_channels of every clip, in index order (0 = the clip has no latents).
// Throws hallo::Error naming the shard when a listed clip or its attribute is missing.
std::vector<int> stored_latent_channels(const ShardReader& reader);

}  // namespace hallo::data
