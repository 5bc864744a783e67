#include "media/video_writer.h"

extern "C" {
#include <libavutil/opt.h>
}

#include <cmath>
#include <cstring>
#include <optional>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "media/aac_encoder.h"
#include "media/audio_reader.h"
#include "media/av_common.h"

namespace hallo::media {

using namespace detail;

namespace {

struct OutputDeleter {
  void operator()(AVFormatContext* oc) const {
    if (oc->pb && !(oc->oformat->flags & AVFMT_NOFILE)) avio_closep(&oc->pb);
    avformat_free_context(oc);
  }
};
using OutputPtr = std::unique_ptr<AVFormatContext, OutputDeleter>;

bool is_mov_family(const AVOutputFormat* f) {
  const std::string name = f->name;
  return name.find("mp4") != std::string::npos || name.find("mov") != std::string::npos;
}

}  // namespace

struct VideoWriter::Impl {
  std::filesystem::path path;
  std::string where;
  int width, height, enc_w, enc_h;
  EncodeOptions opts;
  AVRational rate{25, 1};
  const AVOutputFormat* oformat = nullptr;
  CodecPtr enc;
  SwsPtr sws;
  FramePtr frame = make_frame();
  int staged_stride = 0;
  std::vector<uint8_t> staged;     // [enc_h + 1, staged_stride] RGB24 fed to libswscale
  std::vector<PacketPtr> packets;  // encoded video, enc->time_base
  int64_t frames = 0;
  std::vector<float> audio;
  int audio_rate = 0;
  bool closed = false;

  Impl(const std::filesystem::path& p, int w, int h, const EncodeOptions& o)
      : path(p), where(p.string()), width(w), height(h), enc_w((w + 1) & ~1), enc_h((h + 1) & ~1),
        opts(o) {
    init_logging();
    if (w <= 0 || h <= 0) fail_at(where, "invalid video size {}x{}", w, h);
    if (!(o.fps > 0) || !std::isfinite(o.fps)) fail_at(where, "invalid frame rate {}", o.fps);
    const auto dir = path.parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      fail_at(where, "output directory '{}' does not exist", dir.string());
    oformat = av_guess_format(nullptr, where.c_str(), nullptr);
    if (!oformat) fail_at(where, "unknown output container (use .mp4, .mov or .mkv)");
    rate = av_d2q(o.fps, 1 << 20);

    const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
    if (!codec) fail_at(where, "libx264 encoder not available in this libavcodec build");
    enc.reset(avcodec_alloc_context3(codec));
    if (!enc) fail_at(where, "out of memory allocating the encoder");
    enc->width = enc_w;
    enc->height = enc_h;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = av_inv_q(rate);
    enc->framerate = rate;
    // swscale's RGB->YUV default is BT.601 limited range; tag it so players agree.
    enc->colorspace = AVCOL_SPC_SMPTE170M;
    enc->color_range = AVCOL_RANGE_MPEG;
    enc->thread_count = 0;
    if (oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary* dict = nullptr;
    av_dict_set(&dict, "preset", opts.preset.c_str(), 0);
    av_dict_set_int(&dict, "crf", opts.crf, 0);
    const int err = avcodec_open2(enc.get(), codec, &dict);
    av_dict_free(&dict);
    if (err < 0)
      fail_at(where, "cannot open libx264 (preset '{}', crf {}): {}", opts.preset, opts.crf,
              av_error_text(err));

    sws.reset(sws_getContext(enc_w, enc_h, AV_PIX_FMT_RGB24, enc_w, enc_h, AV_PIX_FMT_YUV420P,
                             SWS_BICUBIC, nullptr, nullptr, nullptr));
    if (!sws) fail_at(where, "cannot set up RGB->YUV conversion");
    staged_stride = FFALIGN(enc_w * 3, 64);
    staged.assign(static_cast<size_t>(staged_stride) * (enc_h + 1), 0);
    frame->format = AV_PIX_FMT_YUV420P;
    frame->width = enc_w;
    frame->height = enc_h;
    if (av_frame_get_buffer(frame.get(), 0) < 0) fail_at(where, "cannot allocate a video frame");
  }

  // Copies the caller's tight RGB rows into an aligned buffer with spare bytes
  // (libswscale's SIMD reads past the end of a row) and pads odd sizes to even
  // by repeating the last column/row.
  void stage(const uint8_t* rgb) {
    const size_t src_row = static_cast<size_t>(width) * 3;
    for (int y = 0; y < enc_h; ++y) {
      const uint8_t* s = rgb + std::min(y, height - 1) * src_row;
      uint8_t* d = staged.data() + static_cast<size_t>(y) * staged_stride;
      std::memcpy(d, s, src_row);
      if (enc_w > width) std::memcpy(d + src_row, s + src_row - 3, 3);
    }
  }

  void write_rgb(const uint8_t* rgb) {
    if (closed) fail_at(where, "write_rgb after close()");
    if (!rgb) fail_at(where, "write_rgb: null frame");
    stage(rgb);
    int err = av_frame_make_writable(frame.get());
    if (err < 0) fail_at(where, "cannot get a writable frame: {}", av_error_text(err));
    const uint8_t* src_data[4] = {staged.data(), nullptr, nullptr, nullptr};
    const int src_stride[4] = {staged_stride, 0, 0, 0};
    sws_scale(sws.get(), src_data, src_stride, 0, enc_h, frame->data, frame->linesize);
    frame->pts = frames++;
    try {
      encode_into(enc.get(), frame.get(), packets);
    } catch (...) {
      rethrow_with_context(where);
    }
  }

  void close() {
    if (closed) fail_at(where, "close() called twice");
    closed = true;  // a failed close leaves the writer inert; the temp file is removed
    if (frames == 0) fail_at(where, "no frames written");
    std::optional<EncodedStream> aac;
    try {
      encode_into(enc.get(), nullptr, packets);
      if (audio_rate > 0) {
        // Trim or pad with silence to exactly the video's length.
        const double video_s = static_cast<double>(frames) / av_q2d(rate);
        audio.resize(static_cast<size_t>(std::llround(video_s * audio_rate)), 0.f);
        aac = encode_aac(audio, audio_rate, opts.audio_bitrate,
                         oformat->flags & AVFMT_GLOBALHEADER);
      }
    } catch (...) {
      rethrow_with_context(where);
    }
    AtomicFile out(path);
    const std::string temp = out.temp_path().string();
    AVFormatContext* raw = nullptr;
    int err = avformat_alloc_output_context2(&raw, oformat, nullptr, temp.c_str());
    if (err < 0) fail_at(where, "cannot create muxer: {}", av_error_text(err));
    OutputPtr oc(raw);
    AVStream* vst = add_stream(oc.get(), enc.get());
    vst->avg_frame_rate = rate;
    AVStream* ast = aac ? add_stream(oc.get(), aac->ctx.get()) : nullptr;
    // libav writes through its own handle to the AtomicFile's temp name; the
    // AtomicFile still owns cleanup and the final fsync + rename.
    err = avio_open(&oc->pb, temp.c_str(), AVIO_FLAG_WRITE);
    if (err < 0) fail_at(where, "cannot open temp file for writing: {}", av_error_text(err));
    AVDictionary* mux_opts = nullptr;
    if (is_mov_family(oformat)) av_dict_set(&mux_opts, "movflags", "+faststart", 0);
    err = avformat_write_header(oc.get(), &mux_opts);
    av_dict_free(&mux_opts);
    if (err < 0) fail_at(where, "cannot write container header: {}", av_error_text(err));

    // Merge the two packet queues in time order so the file is interleaved.
    size_t vi = 0, ai = 0;
    const size_t an = aac ? aac->packets.size() : 0;
    while (vi < packets.size() || ai < an) {
      bool take_video = ai >= an;
      if (!take_video && vi < packets.size())
        take_video = av_compare_ts(packets[vi]->dts, enc->time_base, aac->packets[ai]->dts,
                                   aac->ctx->time_base) <= 0;
      AVPacket* pkt = take_video ? packets[vi++].get() : aac->packets[ai++].get();
      const AVRational tb = take_video ? enc->time_base : aac->ctx->time_base;
      AVStream* st = take_video ? vst : ast;
      av_packet_rescale_ts(pkt, tb, st->time_base);
      pkt->stream_index = st->index;
      err = av_interleaved_write_frame(oc.get(), pkt);
      if (err < 0) fail_at(where, "cannot write packet: {}", av_error_text(err));
    }
    err = av_write_trailer(oc.get());
    if (err < 0) fail_at(where, "cannot finish container: {}", av_error_text(err));
    err = avio_closep(&oc->pb);
    if (err < 0) fail_at(where, "cannot close temp file: {}", av_error_text(err));
    out.commit();
    packets.clear();
  }

  AVStream* add_stream(AVFormatContext* oc, const AVCodecContext* codec_ctx) {
    AVStream* st = avformat_new_stream(oc, nullptr);
    if (!st) fail_at(where, "cannot add a stream");
    const int err = avcodec_parameters_from_context(st->codecpar, codec_ctx);
    if (err < 0) fail_at(where, "bad codec parameters: {}", av_error_text(err));
    st->time_base = codec_ctx->time_base;  // a hint; the muxer may pick its own
    return st;
  }
};

VideoWriter::VideoWriter(const std::filesystem::path& path, int width, int height, EncodeOptions opts)
    : impl_(std::make_unique<Impl>(path, width, height, opts)) {}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write_rgb(const uint8_t* rgb) { impl_->write_rgb(rgb); }

void VideoWriter::set_audio(std::vector<float> mono, int sample_rate) {
  if (sample_rate <= 0) fail_at(impl_->where, "invalid audio sample rate {}", sample_rate);
  if (impl_->closed) fail_at(impl_->where, "set_audio after close()");
  impl_->audio = std::move(mono);
  impl_->audio_rate = sample_rate;
}

void VideoWriter::set_audio_file(const std::filesystem::path& audio_src) {
  AudioDecodeOptions o;
  o.sample_rate = 0;  // keep the source rate; AAC takes it as is when it can
  DecodedAudio a = decode_audio(audio_src, o);
  set_audio(std::move(a.samples), a.sample_rate);
}

void VideoWriter::close() { impl_->close(); }

int64_t VideoWriter::frames_written() const { return impl_->frames; }
int VideoWriter::encoded_width() const { return impl_->enc_w; }
int VideoWriter::encoded_height() const { return impl_->enc_h; }

}  // namespace hallo::media
