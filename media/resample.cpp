#include "media/resample.h"

#include <algorithm>

#include "core/error.h"
#include "media/mono_resampler.h"

namespace hallo::media {

std::vector<float> resample(const std::vector<float>& mono, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) fail("resample: invalid rates {} -> {}", from_rate, to_rate);
  if (from_rate == to_rate || mono.empty()) return from_rate == to_rate ? mono : std::vector<float>{};
  detail::init_logging();
  AVChannelLayout layout = AV_CHANNEL_LAYOUT_MONO;
  detail::MonoResampler r(layout, AV_SAMPLE_FMT_FLT, from_rate, to_rate);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(static_cast<double>(mono.size()) * to_rate / from_rate) + 64);
  // swr_convert takes int counts; feed long signals in chunks.
  constexpr size_t kChunk = 1 << 20;
  for (size_t i = 0; i < mono.size(); i += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, mono.size() - i));
    const uint8_t* planes[1] = {reinterpret_cast<const uint8_t*>(mono.data() + i)};
    r.push(planes, n, out);
  }
  r.flush(out);
  return out;
}

}  // namespace hallo::media
