#pragma once
// Minimal ZIP central-directory reader (with ZIP64) for torch.save archives.
// PyTorchStreamWriter stores records uncompressed and 64-byte aligned, so
// records can be used in place from a memory map; libtorch's own reader copies
// every record, which would double peak memory for multi-GB checkpoints.
#include <cstdint>
#include <string>
#include <vector>

namespace hallo::io {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t data_offset = 0;  // absolute offset of the entry's bytes
};

bool looks_like_zip(const uint8_t* data, size_t size);
// Parses and validates the directory; every entry's data lies inside the file.
std::vector<ZipEntry> read_zip_directory(const uint8_t* data, size_t size, const std::string& where);

}  // namespace hallo::io
