#pragma once
// torch.save files: the zip archive format (torch >= 1.6: <archive>/data.pkl +
// <archive>/data/<key>) and the legacy pickle stream (magic number, protocol,
// sys_info, object pickle, storage key list, raw storages). The pickle is read
// by the restricted unpickler: only state-dict globals are accepted, anything
// else (os.system, builtins.eval, ...) is refused by name and nothing runs.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "model/io/pickle.h"
#include "model/io/tensor_record.h"

namespace hallo::io {

WeightSet read_torch_checkpoint(const std::filesystem::path& path);

// Both formats, from bytes already in memory (used by the fuzz target).
WeightSet read_torch_zip(BlobPtr file, const std::string& where);
WeightSet read_torch_legacy(BlobPtr file, const std::string& where);

// Element type of a torch.<X>Storage class name ("FloatStorage" -> F32); nullopt if unknown.
std::optional<DType> torch_storage_dtype(const std::string& name);

// The hooks used for torch pickles (exposed for tests and fuzzing).
PyRef torch_find_class(const std::string& module, const std::string& name, const std::string& where);
PyRef torch_call(const PyRef& callable, const PyRef& args, const std::string& where);

// Walks a pickled object: tensors anywhere inside nested dicts/lists/tuples
// become records named by their dotted path ({"state_dict": {"w": t}} ->
// "state_dict.w"); scalar leaves (epoch, step, strings) become metadata.
void flatten_pickled(const PyRef& root, WeightSet* out);

}  // namespace hallo::io
