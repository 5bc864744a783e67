#include "media/av_common.h"

extern "C" {
#include <libavutil/display.h>
}

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cmath>
#include <cstdarg>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace hallo::media::detail {

namespace fs = std::filesystem;

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) fail("libav: out of memory allocating a frame");
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) fail("libav: out of memory allocating a packet");
  return p;
}

std::string av_error_text(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  if (av_strerror(err, buf, sizeof buf) < 0) return fmt::format("libav error {}", err);
  return buf;
}

namespace {

void log_to_spdlog(void* avcl, int level, const char* format, va_list vl) {
  // Only warnings and errors are worth a line; verbose/trace levels are skipped
  // before formatting because decoders emit them per packet.
  if (level > AV_LOG_WARNING) return;
  auto* logger = spdlog::default_logger_raw();
  if (!logger || !logger->should_log(spdlog::level::debug)) return;
  char line[1024];
  thread_local int print_prefix = 1;
  av_log_format_line2(avcl, level, format, vl, line, sizeof line, &print_prefix);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  if (!s.empty()) logger->debug("libav: {}", s);
}

}  // namespace

void init_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(log_to_spdlog);
  });
}

InputPtr open_input(const fs::path& path) {
  init_logging();
  const std::string where = path.string();
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (!fs::exists(st)) fail_at(where, "no such file");
  if (fs::is_directory(st)) fail_at(where, "is a directory, not a media file");
  if (fs::is_regular_file(st) && fs::file_size(path, ec) == 0 && !ec)
    fail_at(where, "not a media file (empty file)");

  AVFormatContext* raw = nullptr;
  int err = avformat_open_input(&raw, where.c_str(), nullptr, nullptr);
  if (err < 0) {
    if (err == AVERROR(ENOENT)) fail_at(where, "no such file");
    if (err == AVERROR(EACCES)) fail_at(where, "permission denied");
    // Garbage and cut-off headers surface as invalid data, early EOF, absurd
    // allocation sizes or "not implemented" features.
    if (err == AVERROR_INVALIDDATA || err == AVERROR_EOF || err == AVERROR(ENOMEM) ||
        err == AVERROR_PATCHWELCOME)
      fail_at(where, "not a media file or truncated ({})", av_error_text(err));
    fail_at(where, "cannot open: {}", av_error_text(err));
  }
  InputPtr fmt(raw);
  err = avformat_find_stream_info(fmt.get(), nullptr);
  if (err < 0) fail_at(where, "corrupt or truncated ({})", av_error_text(err));
  bool any = false;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const auto t = fmt->streams[i]->codecpar->codec_type;
    any = any || t == AVMEDIA_TYPE_VIDEO || t == AVMEDIA_TYPE_AUDIO;
  }
  if (!any) fail_at(where, "not a media file (no audio or video streams)");
  return fmt;
}

int find_stream(AVFormatContext* fmt, AVMediaType type) {
  int idx = av_find_best_stream(fmt, type, -1, -1, nullptr, 0);
  if (idx >= 0 && type == AVMEDIA_TYPE_VIDEO &&
      (fmt->streams[idx]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
    // An mp3/m4a cover image is not a video; look for a real one.
    idx = -1;
    for (unsigned i = 0; i < fmt->nb_streams; ++i) {
      const AVStream* st = fmt->streams[i];
      if (st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
          !(st->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
        idx = static_cast<int>(i);
        break;
      }
    }
  }
  return idx < 0 ? -1 : idx;
}

CodecPtr open_decoder(const fs::path& path, AVFormatContext* fmt, int index) {
  const std::string where = path.string();
  const AVCodecParameters* par = fmt->streams[index]->codecpar;
  const AVCodec* codec = avcodec_find_decoder(par->codec_id);
  if (par->codec_id == AV_CODEC_ID_NONE)
    fail_at(where, "corrupt or unsupported {} stream (unknown codec)",
            av_get_media_type_string(par->codec_type));
  if (!codec) fail_at(where, "no decoder for codec '{}'", avcodec_get_name(par->codec_id));
  CodecPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) fail_at(where, "out of memory allocating a decoder");
  int err = avcodec_parameters_to_context(ctx.get(), par);
  if (err < 0) fail_at(where, "bad codec parameters: {}", av_error_text(err));
  ctx->pkt_timebase = fmt->streams[index]->time_base;
  ctx->thread_count = 0;  // libav picks (frame threads for H.264)
  err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0)
    fail_at(where, "cannot open {} decoder: {}", avcodec_get_name(par->codec_id),
            av_error_text(err));
  return ctx;
}

int stream_rotation(const AVStream* st) {
  double ccw = 0;
  bool found = false;
  size_t size = 0;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
  // FFmpeg >= 6.1 keeps stream side data in codecpar (av_stream_get_side_data is gone in 7).
  const AVPacketSideData* psd = av_packet_side_data_get(st->codecpar->coded_side_data,
                                                        st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
  const uint8_t* sd = psd ? psd->data : nullptr;
  if (psd) size = psd->size;
#else
  // Debian bookworm's FFmpeg 5.1 (lavf 59).
  const uint8_t* sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
#endif
  if (sd && size >= 9 * sizeof(int32_t)) {
    ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(sd));
    found = !std::isnan(ccw);
  }
  int cw = 0;
  if (found) {
    cw = static_cast<int>(std::lround(-ccw));
  } else if (const AVDictionaryEntry* e = av_dict_get(st->metadata, "rotate", nullptr, 0)) {
    cw = std::atoi(e->value);  // legacy tag: clockwise degrees
  }
  cw = ((cw % 360) + 360) % 360;
  // Snap to the nearest right angle; other angles are not supported by the readers.
  return ((cw + 45) / 90 % 4) * 90;
}

void check_not_truncated(const std::string& where, AVFormatContext* fmt, AVStream* st,
                         int64_t packets_read, const char* kind) {
  const int n = avformat_index_get_entries_count(st);
  const int64_t file_size = fmt->pb ? avio_size(fmt->pb) : -1;
  if (n <= 0 || file_size <= 0) return;
  const AVIndexEntry* last = avformat_index_get_entry(st, n - 1);
  if (last && last->pos + last->size > file_size)
    fail_at(where, "truncated or corrupt: the file has {} bytes but its index needs {} ({} of {} {} packets read)",
            file_size, last->pos + last->size, packets_read, n, kind);
}

}  // namespace hallo::media::detail
