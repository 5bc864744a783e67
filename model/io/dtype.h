#pragma once
// Element types shared by every weight format. Names follow safetensors
// ("F32", "BF16", ...), which is also what `hallo inspect` prints.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hallo::io {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType d);
size_t dtype_size(DType d);
bool dtype_is_floating(DType d);
// Parses a safetensors dtype name; nullopt for unknown names.
std::optional<DType> dtype_from_name(std::string_view name);

}  // namespace hallo::io
