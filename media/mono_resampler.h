#pragma once
// libswresample wrapper: any layout/format/rate -> mono float at one rate, the
// channels averaged (librosa-style mono, not swr's louder 1/sqrt(2) downmix).
// Internal to hallo_media.
#include <cstdint>
#include <vector>

#include "media/av_common.h"

namespace hallo::media::detail {

class MonoResampler {
 public:
  MonoResampler(const AVChannelLayout& in_layout, AVSampleFormat in_fmt, int in_rate, int out_rate);

  // True when `frame` has the format this resampler was built for.
  bool accepts(const AVFrame* frame) const;
  // Converts `n` input samples (libav plane pointers) and appends the output.
  void push(const uint8_t* const* data, int n, std::vector<float>& out);
  // Drains the filter delay at the end of the stream.
  void flush(std::vector<float>& out);

 private:
  SwrPtr swr_;
  AVSampleFormat in_fmt_;
  int in_rate_, out_rate_, in_channels_;
};

}  // namespace hallo::media::detail
