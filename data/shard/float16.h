#pragma once
// IEEE 754 binary16 <-> float32. HDF5 1.10 has no native half type, so shards
// store the raw 16-bit patterns under a custom HDF5 float type (see h5_file.cpp)
// and convert here. Round-to-nearest-even, with subnormals, inf and NaN kept.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hallo::data {

uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

std::vector<uint16_t> floats_to_halves(const std::vector<float>& v);
std::vector<float> halves_to_floats(const std::vector<uint16_t>& v);

}  // namespace hallo::data
