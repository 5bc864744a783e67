#include "media/aac_encoder.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "media/resample.h"

namespace hallo::media::detail {

void encode_into(AVCodecContext* enc, const AVFrame* frame, std::vector<PacketPtr>& out) {
  int err = avcodec_send_frame(enc, frame);
  if (err < 0) fail("{} encoder rejected a frame: {}", enc->codec->name, av_error_text(err));
  for (;;) {
    PacketPtr pkt = make_packet();
    err = avcodec_receive_packet(enc, pkt.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    if (err < 0) fail("{} encoder failed: {}", enc->codec->name, av_error_text(err));
    out.push_back(std::move(pkt));
  }
}

namespace {

int nearest_supported_rate(const AVCodec* codec, int rate) {
  if (!codec->supported_samplerates) return rate;
  int best = codec->supported_samplerates[0];
  for (const int* r = codec->supported_samplerates; *r; ++r) {
    if (*r == rate) return rate;
    if (std::abs(*r - rate) < std::abs(best - rate)) best = *r;
  }
  return best;
}

}  // namespace

EncodedStream encode_aac(const std::vector<float>& mono_in, int sample_rate, int bitrate,
                         bool global_header) {
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
  if (!codec) fail("no AAC encoder in this libavcodec build");
  const int rate = nearest_supported_rate(codec, sample_rate);
  const std::vector<float> mono = rate == sample_rate ? mono_in : resample(mono_in, sample_rate, rate);

  EncodedStream s;
  s.ctx.reset(avcodec_alloc_context3(codec));
  if (!s.ctx) fail("out of memory allocating the AAC encoder");
  AVCodecContext* enc = s.ctx.get();
  enc->sample_rate = rate;
  enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_FLTP;
  if (enc->sample_fmt != AV_SAMPLE_FMT_FLTP && enc->sample_fmt != AV_SAMPLE_FMT_FLT)
    fail("AAC encoder wants sample format {}, only float is supported",
         av_get_sample_fmt_name(enc->sample_fmt));
  AVChannelLayout mono_layout = AV_CHANNEL_LAYOUT_MONO;
  av_channel_layout_copy(&enc->ch_layout, &mono_layout);
  enc->bit_rate = bitrate;
  enc->time_base = AVRational{1, rate};
  if (global_header) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  int err = avcodec_open2(enc, codec, nullptr);
  if (err < 0) fail("cannot open AAC encoder: {}", av_error_text(err));

  // Mono: the single plane of FLTP is a contiguous float run, same as FLT.
  const int frame_size = enc->frame_size > 0 ? enc->frame_size : 1024;
  FramePtr frame = make_frame();
  for (size_t pos = 0; pos < mono.size(); pos += static_cast<size_t>(frame_size)) {
    const int n = static_cast<int>(std::min<size_t>(frame_size, mono.size() - pos));
    av_frame_unref(frame.get());
    frame->nb_samples = n;
    frame->format = enc->sample_fmt;
    frame->sample_rate = rate;
    av_channel_layout_copy(&frame->ch_layout, &enc->ch_layout);
    err = av_frame_get_buffer(frame.get(), 0);
    if (err < 0) fail("cannot allocate an audio frame: {}", av_error_text(err));
    std::memcpy(frame->data[0], mono.data() + pos, static_cast<size_t>(n) * sizeof(float));
    frame->pts = static_cast<int64_t>(pos);
    encode_into(enc, frame.get(), s.packets);
  }
  encode_into(enc, nullptr, s.packets);
  return s;
}

}  // namespace hallo::media::detail
