#include "media/video_reader.h"

#include <cerrno>
#include <cmath>
#include <utility>

#include "core/error.h"
#include "media/av_common.h"
#include "media/frame_converter.h"

namespace hallo::media {

using namespace detail;

namespace {

int64_t frame_duration(const AVFrame* f) {
#if LIBAVUTIL_VERSION_INT >= AV_VERSION_INT(57, 30, 100)
  return f->duration;
#else
  return f->pkt_duration;
#endif
}

// Give up on a stream after this many undecodable packets in a row: it is not
// a damaged frame here and there but garbage.
constexpr int kMaxConsecutiveBadPackets = 100;

}  // namespace

struct VideoReader::Impl {
  std::filesystem::path path;
  std::string where;
  VideoDecodeOptions opts;
  InputPtr fmt;
  AVStream* st = nullptr;
  int vidx = -1;
  CodecPtr dec;
  PacketPtr pkt = make_packet();
  MediaInfo info;
  FrameConverter conv{0, false, 0, 0};

  // Decoded frames; pts are in stream time base, NOPTS already filled in.
  FramePtr cur = make_frame(), ahead = make_frame();
  bool have_cur = false, have_ahead = false;
  bool demux_done = false, decoder_done = false, finished = false;
  int64_t packets_read = 0, frames_decoded = 0, bad_in_row = 0;
  std::string last_error;
  int64_t last_pts = AV_NOPTS_VALUE;
  int64_t default_dur = 1;  // ticks of one source frame

  AVRational out_rate{0, 1};  // 0 = keep source frames
  int64_t start_ts = 0;       // stream ticks of start_s (absolute)
  int64_t end_ts = INT64_MAX; // stream ticks where duration_s ends
  int64_t out_index = 0, frame_limit = -1;

  // Converted RGB of the frame shown last, reused for duplicates.
  int64_t cached_pts = AV_NOPTS_VALUE;
  std::vector<uint8_t> cached_rgb;
  int cached_w = 0, cached_h = 0;

  Impl(const std::filesystem::path& p, const VideoDecodeOptions& o)
      : path(p), where(p.string()), opts(o) {
    fmt = open_input(path);
    info = describe(fmt.get(), path);
    vidx = find_stream(fmt.get(), AVMEDIA_TYPE_VIDEO);
    if (vidx < 0) fail_at(where, "no video stream");
    st = fmt->streams[vidx];
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      if (static_cast<int>(i) != vidx) fmt->streams[i]->discard = AVDISCARD_ALL;
    dec = open_decoder(path, fmt.get(), vidx);
    conv = FrameConverter(opts.apply_rotation ? info.rotation : 0, opts.center_crop_square,
                          opts.out_width, opts.out_height);
    if (opts.out_width < 0 || opts.out_height < 0)
      fail_at(where, "negative output size {}x{}", opts.out_width, opts.out_height);

    AVRational src_rate = st->avg_frame_rate;
    if (src_rate.num <= 0 || src_rate.den <= 0) src_rate = st->r_frame_rate;
    if (src_rate.num <= 0 || src_rate.den <= 0) src_rate = AVRational{25, 1};
    default_dur = std::max<int64_t>(1, av_rescale_q(1, av_inv_q(src_rate), st->time_base));

    const int64_t stream_start = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
    start_ts = stream_start + to_ticks(std::max(0.0, opts.start_s));
    if (opts.duration_s >= 0) end_ts = start_ts + to_ticks(opts.duration_s);
    if (opts.fps > 0) {
      out_rate = av_d2q(opts.fps, 1 << 20);
      if (opts.duration_s >= 0) frame_limit = std::llround(opts.duration_s * opts.fps);
    }
    if (opts.max_frames >= 0 && (frame_limit < 0 || opts.max_frames < frame_limit))
      frame_limit = opts.max_frames;
    if (opts.start_s > 0) {
      // Seek to the keyframe before start; decoding forward from there finds the
      // frame on screen at start_s. A failed seek just decodes from the top.
      if (av_seek_frame(fmt.get(), vidx, start_ts, AVSEEK_FLAG_BACKWARD) >= 0)
        avcodec_flush_buffers(dec.get());
    }
  }

  int64_t to_ticks(double seconds) const {
    return static_cast<int64_t>(std::llround(seconds / av_q2d(st->time_base)));
  }

  // Next decoded frame into `f`; false once the decoder is drained.
  bool decode(AVFrame* f) {
    while (!decoder_done) {
      int r = avcodec_receive_frame(dec.get(), f);
      if (r >= 0) {
        int64_t ts = f->best_effort_timestamp;
        if (ts == AV_NOPTS_VALUE) ts = last_pts == AV_NOPTS_VALUE ? start_ts : last_pts + default_dur;
        f->pts = ts;
        last_pts = ts;
        ++frames_decoded;
        bad_in_row = 0;
        return true;
      }
      if (r == AVERROR_EOF) {
        decoder_done = true;
        break;
      }
      if (r != AVERROR(EAGAIN)) {
        // A frame the decoder could not reconstruct; keep going.
        last_error = av_error_text(r);
        if (++bad_in_row >= kMaxConsecutiveBadPackets)
          fail_at(where, "corrupt video stream ({} decode errors in a row: {})", bad_in_row,
                  last_error);
        continue;
      }
      feed_packet();
    }
    return false;
  }

  void feed_packet() {
    if (demux_done) {
      // Flush already sent and the decoder still wants input: nothing more will come.
      decoder_done = true;
      return;
    }
    for (;;) {
      int r = av_read_frame(fmt.get(), pkt.get());
      if (r < 0) {
        demux_done = true;
        if (r != AVERROR_EOF && !(fmt->pb && avio_feof(fmt->pb)))
          fail_at(where, "corrupt or truncated (read error: {})", av_error_text(r));
        check_not_truncated(where, fmt.get(), st, packets_read, "video");
        avcodec_send_packet(dec.get(), nullptr);  // enter draining mode
        return;
      }
      if (pkt->stream_index != vidx) {
        av_packet_unref(pkt.get());
        continue;
      }
      ++packets_read;
      r = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (r < 0 && r != AVERROR(EAGAIN)) {
        last_error = av_error_text(r);
        if (++bad_in_row >= kMaxConsecutiveBadPackets)
          fail_at(where, "corrupt video stream ({} undecodable packets: {})", bad_in_row,
                  last_error);
        continue;
      }
      bad_in_row = 0;
      return;
    }
  }

  void emit(const AVFrame* src_frame, RgbFrame& out, double time_s) {
    AVFrame* f = const_cast<AVFrame*>(src_frame);
    if (f->pts != cached_pts || cached_rgb.empty()) {
      try {
        conv.convert(f, cached_rgb, &cached_w, &cached_h);
      } catch (...) {
        rethrow_with_context(where);
      }
      cached_pts = f->pts;
    }
    out.width = cached_w;
    out.height = cached_h;
    out.rgb = cached_rgb;
    out.index = out_index;
    out.time_s = time_s;
    ++out_index;
  }

  bool next_source_rate(RgbFrame& out) {
    while (decode(cur.get())) {
      if (cur->pts < start_ts) continue;
      if (cur->pts >= end_ts) break;
      emit(cur.get(), out, static_cast<double>(cur->pts - start_ts) * av_q2d(st->time_base));
      return true;
    }
    finished = true;
    if (frames_decoded == 0)
      fail_at(where, "corrupt: no decodable video frames{}", last_error.empty() ? "" : " (" + last_error + ")");
    return false;
  }

  bool next_fixed_rate(RgbFrame& out) {
    if (!have_cur) {
      if (!decode(cur.get())) {
        finished = true;
        if (frames_decoded == 0)
          fail_at(where, "corrupt: no decodable video frames{}",
                  last_error.empty() ? "" : " (" + last_error + ")");
        return false;
      }
      have_cur = true;
    }
    // Output frame time in stream ticks; integer compare avoids 1/30 vs 1/25 rounding.
    const int64_t target = start_ts + av_rescale_q(out_index, av_inv_q(out_rate), st->time_base);
    if (target >= end_ts) {
      finished = true;
      return false;
    }
    for (;;) {
      if (!have_ahead) have_ahead = decode(ahead.get());
      if (!have_ahead || ahead->pts > target) break;
      std::swap(cur, ahead);
      have_ahead = false;
    }
    if (!have_ahead) {
      // Last source frame: it stays on screen for its own duration.
      const int64_t d = frame_duration(cur.get());
      if (target >= cur->pts + (d > 0 ? d : default_dur)) {
        finished = true;
        return false;
      }
    }
    emit(cur.get(), out, static_cast<double>(out_index) / av_q2d(out_rate));
    return true;
  }

  bool next(RgbFrame& out) {
    if (finished) return false;
    if (frame_limit >= 0 && out_index >= frame_limit) {
      finished = true;
      return false;
    }
    return out_rate.num > 0 ? next_fixed_rate(out) : next_source_rate(out);
  }
};

VideoReader::VideoReader(const std::filesystem::path& path, VideoDecodeOptions opts)
    : impl_(std::make_unique<Impl>(path, opts)) {}
VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

const MediaInfo& VideoReader::info() const { return impl_->info; }

int VideoReader::out_width() const {
  int w = 0, h = 0;
  impl_->conv.output_size(impl_->info.width, impl_->info.height, &w, &h);
  return w;
}

int VideoReader::out_height() const {
  int w = 0, h = 0;
  impl_->conv.output_size(impl_->info.width, impl_->info.height, &w, &h);
  return h;
}

bool VideoReader::next(RgbFrame& out) { return impl_->next(out); }

std::vector<RgbFrame> read_video(const std::filesystem::path& path, const VideoDecodeOptions& opts) {
  VideoReader reader(path, opts);
  std::vector<RgbFrame> frames;
  RgbFrame f;
  while (reader.next(f)) frames.push_back(std::move(f));
  return frames;
}

}  // namespace hallo::media
