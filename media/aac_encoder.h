#pragma once
// Mono float -> AAC packets with libav's native encoder. Internal to hallo_media.
#include <vector>

#include "media/av_common.h"

namespace hallo::media::detail {

struct EncodedStream {
  CodecPtr ctx;                    // opened encoder (codec parameters, time base)
  std::vector<PacketPtr> packets;  // timestamps in ctx->time_base
};

// Encodes `mono` at `sample_rate` (resampled to the nearest rate AAC supports
// when needed). `global_header` for containers that keep codec config out of band.
EncodedStream encode_aac(const std::vector<float>& mono, int sample_rate, int bitrate,
                         bool global_header);

// Sends `frame` (nullptr flushes) and appends every packet the encoder returns.
void encode_into(AVCodecContext* enc, const AVFrame* frame, std::vector<PacketPtr>& out);

}  // namespace hallo::media::detail
