#pragma once
// Internal helpers shared by the media readers/writers: RAII owners for libav
// objects, error text, quiet logging and input opening with classified errors.
// Not part of the public API (no libav types leak through the public headers).
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <filesystem>
#include <memory>
#include <string>

#include "media/probe.h"

namespace hallo::media::detail {

struct FormatInputDeleter {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsDeleter {
  void operator()(SwsContext* p) const { sws_freeContext(p); }
};
struct SwrDeleter {
  void operator()(SwrContext* p) const { swr_free(&p); }
};

using InputPtr = std::unique_ptr<AVFormatContext, FormatInputDeleter>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecDeleter>;
using FramePtr = std::unique_ptr<AVFrame, FrameDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, PacketDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, SwsDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, SwrDeleter>;

FramePtr make_frame();
PacketPtr make_packet();

// av_strerror text for an AVERROR code.
std::string av_error_text(int err);

// Routes libav's log output to spdlog at debug level (once per process), so
// bad inputs produce one hallo::Error rather than a screenful of decoder noise.
void init_logging();

// Opens `path` for demuxing and reads stream info. Throws hallo::Error naming the
// file: "no such file", "is a directory", "not a media file (empty file)",
// "not a media file or truncated (...)", "corrupt or truncated (...)".
InputPtr open_input(const std::filesystem::path& path);

// Index of the best stream of `type` (attached cover pictures are not video),
// or -1 when there is none.
int find_stream(AVFormatContext* fmt, AVMediaType type);

// Opens a decoder for stream `index` with libav's own threading (thread_count 0).
CodecPtr open_decoder(const std::filesystem::path& path, AVFormatContext* fmt, int index);

// Clockwise display rotation of a video stream in degrees (0/90/180/270), from the
// display matrix side data or, for older files, the "rotate" tag.
int stream_rotation(const AVStream* st);

// Throws "truncated" when the demuxer hit end of file while the stream's index
// (mp4 moov) still points past it: the media data was cut off, e.g. a
// half-copied download. Formats without an index are not checked.
void check_not_truncated(const std::string& where, AVFormatContext* fmt, AVStream* st,
                         int64_t packets_read, const char* kind);

// MediaInfo of an opened input (probe() and the readers share it).
MediaInfo describe(AVFormatContext* fmt, const std::filesystem::path& path);


}  // namespace hallo::media::detail
