#pragma once
// Mono float resampling with libswresample.
#include <vector>

namespace hallo::media {

// Returns `mono` at `to_rate`; about size * to_rate / from_rate samples.
std::vector<float> resample(const std::vector<float>& mono, int from_rate, int to_rate);

}  // namespace hallo::media
