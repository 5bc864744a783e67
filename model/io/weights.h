#pragma once
// One entry point for every weight source a user may point at:
//   *.safetensors, torch.save files (.pth/.pt/.ckpt/.bin, zip or legacy),
//   diffusers / HF folders (config.json + weights, incl. sharded *.index.json).
// The format is detected from the bytes, not the extension.
#include <filesystem>
#include <string>

#include "model/io/tensor_record.h"

namespace hallo::io {

WeightSet open_weights(const std::filesystem::path& path);

// Reads a folder: config.json (if present) plus its weights file(s).
WeightSet read_weights_folder(const std::filesystem::path& dir);

// "safetensors", "torch-zip", "torch-legacy" or throws naming the file.
std::string detect_file_format(const std::filesystem::path& path);

}  // namespace hallo::io
