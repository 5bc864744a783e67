#include "data/dataset/latent_probe.h"

#include "core/error.h"
// hallo_shard's HDF5 layer: the same locking and error reporting as the reader.
#include "data/shard/h5_file.h"

namespace hallo::data {

std::vector<int> stored_latent_channels(const ShardReader& reader) {
  const auto& clips = reader.index().clips();
  std::vector<int> out(clips.size(), 0);
  h5::Lock lock;  // HDF5 calls are serialised process-wide, as in the reader
  // index.json lists clips shard by shard, so each file is opened once.
  size_t i = 0;
  while (i < clips.size()) {
    const std::string& shard = clips[i].shard;
    const std::string where = (reader.dir() / shard).string();
    const h5::Handle file = h5::open_file(where, /*writable=*/false);
    for (; i < clips.size() && clips[i].shard == shard; ++i) {
      const std::string group = "clips/" + clips[i].clip_id;
      if (!h5::exists(file.get(), "clips") || !h5::exists(file.get(), group))
        fail_at(where, "clip '{}' listed in index.json is not in the shard", clips[i].clip_id);
      const h5::Handle g = h5::open_group(file.get(), group, where);
      const Attr a = h5::read_attr(g.get(), "latent_channels", where);
      if (a.kind != Attr::Kind::I64 || a.i < 0)
        fail_at(where, "clip '{}': latent_channels is not a non-negative integer", clips[i].clip_id);
      out[i] = static_cast<int>(a.i);
    }
  }
  return out;
}

}  // namespace hallo::data
