#include "model/io/dtype.h"

#include <array>

namespace hallo::io {

namespace {
struct Info {
  DType d;
  std::string_view name;
  size_t size;
  bool floating;
};
constexpr std::array<Info, 10> kInfo{{
    {DType::F64, "F64", 8, true},
    {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},
    {DType::BF16, "BF16", 2, true},
    {DType::I64, "I64", 8, false},
    {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},
    {DType::I8, "I8", 1, false},
    {DType::U8, "U8", 1, false},
    {DType::BOOL, "BOOL", 1, false},
}};
}  // namespace

std::string_view dtype_name(DType d) { return kInfo[static_cast<size_t>(d)].name; }
size_t dtype_size(DType d) { return kInfo[static_cast<size_t>(d)].size; }
bool dtype_is_floating(DType d) { return kInfo[static_cast<size_t>(d)].floating; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.d;
  return std::nullopt;
}

}  // namespace hallo::io
