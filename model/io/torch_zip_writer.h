#pragma once
// Writes a state dict the way Python's torch.save(OrderedDict) does: a zip archive
// (libtorch's own PyTorchStreamWriter, so records are 64-byte aligned as torch's are)
// holding data.pkl (pickle protocol 2: an OrderedDict of
// torch._utils._rebuild_tensor_v2 calls, storages as persistent ids), one data/<i>
// record per tensor, version and byteorder. Only allow-listed globals are used, so
// torch.load(path, weights_only=True) opens it, and the project's restricted unpickler
// reads it back (`hallo convert`).
#include <filesystem>
#include <vector>

#include "model/io/tensor_record.h"

namespace hallo::io {

// The pickle alone (exposed for tests): tensors[i]'s bytes are record "data/<i>".
std::string torch_state_dict_pickle(const std::vector<TensorRecord>& tensors);

// Atomic: written under a temp name, renamed when complete. Strided records are
// stored contiguous.
void write_torch_zip(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors);

}  // namespace hallo::io
