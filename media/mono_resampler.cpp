#include "media/mono_resampler.h"

#include "core/error.h"

namespace hallo::media::detail {

MonoResampler::MonoResampler(const AVChannelLayout& in_layout, AVSampleFormat in_fmt, int in_rate,
                             int out_rate)
    : in_fmt_(in_fmt), in_rate_(in_rate), out_rate_(out_rate), in_channels_(in_layout.nb_channels) {
  if (in_rate <= 0 || out_rate <= 0) fail("invalid sample rates {} -> {}", in_rate, out_rate);
  if (in_channels_ <= 0) fail("audio has no channels");
  // Files with only a channel count get the default layout for it.
  AVChannelLayout layout{};
  if (in_layout.order == AV_CHANNEL_ORDER_UNSPEC)
    av_channel_layout_default(&layout, in_channels_);
  else if (av_channel_layout_copy(&layout, &in_layout) < 0)
    fail("cannot copy channel layout");
  AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  int err = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, out_rate, &layout, in_fmt, in_rate,
                                0, nullptr);
  av_channel_layout_uninit(&layout);
  swr_.reset(raw);
  if (err < 0) fail("cannot set up resampler: {}", av_error_text(err));
  std::vector<double> mean(static_cast<size_t>(in_channels_), 1.0 / in_channels_);
  err = swr_set_matrix(swr_.get(), mean.data(), in_channels_);
  if (err < 0) fail("cannot set downmix matrix: {}", av_error_text(err));
  err = swr_init(swr_.get());
  if (err < 0) fail("cannot initialise resampler: {}", av_error_text(err));
}

bool MonoResampler::accepts(const AVFrame* frame) const {
  return frame->format == in_fmt_ && frame->sample_rate == in_rate_ &&
         frame->ch_layout.nb_channels == in_channels_;
}

void MonoResampler::push(const uint8_t* const* data, int n, std::vector<float>& out) {
  const int cap = swr_get_out_samples(swr_.get(), n);
  if (cap < 0) fail("resampler error: {}", av_error_text(cap));
  const size_t old = out.size();
  out.resize(old + static_cast<size_t>(cap));
  uint8_t* dst = reinterpret_cast<uint8_t*>(out.data() + old);
  const int got = swr_convert(swr_.get(), &dst, cap, const_cast<const uint8_t**>(data), n);
  if (got < 0) {
    out.resize(old);
    fail("resampler error: {}", av_error_text(got));
  }
  out.resize(old + static_cast<size_t>(got));
}

void MonoResampler::flush(std::vector<float>& out) { push(nullptr, 0, out); }

}  // namespace hallo::media::detail
