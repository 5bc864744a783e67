#pragma once
// safetensors: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets:[begin,end]}, "__metadata__": {str: str}},
// then the data region. Reading maps the file and points records into it.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/io/tensor_record.h"

namespace hallo::io {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the data region
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in file order of data offsets
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute offset of the data region
};

// Largest header accepted (same limit as the reference implementation).
constexpr uint64_t kMaxSafetensorsHeader = 100u * 1024 * 1024;

// Validates everything: header length, JSON, dtypes, shapes, offsets in range,
// byte counts matching shapes, no overlapping tensors. `where` names the file.
SafetensorsHeader parse_safetensors(const uint8_t* data, size_t size, const std::string& where);

WeightSet read_safetensors(const std::filesystem::path& path);

// Writes records (any strides) atomically: temp file + rename. Tensors are
// laid out in name order with the data region 8-byte aligned.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Serialises the header for `tensors` laid out back to back (exposed for tests/fuzzing).
std::string safetensors_header_json(const std::vector<TensorRecord>& tensors,
                                    const std::map<std::string, std::string>& metadata);

// Copies a record's elements into `out` in row-major order (gathers strided views).
void copy_contiguous(const TensorRecord& r, uint8_t* out);

}  // namespace hallo::io
