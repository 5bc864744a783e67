#include "media/sndfile_reader.h"
#include "media/audio_reader.h"

#include <cerrno>
#include <cmath>
#include <limits>
#include <optional>

#include "core/error.h"
#include "media/av_common.h"
#include "media/mono_resampler.h"

namespace hallo::media {

using namespace detail;

namespace {

constexpr int kMaxConsecutiveErrors = 100;

// Collects resampled output, dropping the samples before start and stopping at
// start + duration (positions are counted at the output rate from the stream start).
struct Trimmer {
  int64_t skip = 0, limit = std::numeric_limits<int64_t>::max();
  int64_t seen = 0;  // output samples produced so far (before trimming)
  std::vector<float> out;

  bool full() const { return static_cast<int64_t>(out.size()) >= limit; }
  void take(const std::vector<float>& chunk) {
    for (float v : chunk) {
      if (seen++ < skip) continue;
      if (full()) return;
      out.push_back(v);
    }
  }
};

}  // namespace

DecodedAudio decode_audio(const std::filesystem::path& path, const AudioDecodeOptions& opts) {
  const std::string where = path.string();
  if (detail::sndfile_extension(path) && std::filesystem::is_regular_file(path))
    if (auto direct = detail::decode_with_sndfile(path, opts)) return std::move(*direct);
  auto fmt = open_input(path);
  const int aidx = find_stream(fmt.get(), AVMEDIA_TYPE_AUDIO);
  if (aidx < 0) fail_at(where, "no audio stream");
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (static_cast<int>(i) != aidx) fmt->streams[i]->discard = AVDISCARD_ALL;
  auto dec = open_decoder(path, fmt.get(), aidx);

  DecodedAudio result;
  result.sample_rate = opts.sample_rate > 0 ? opts.sample_rate : dec->sample_rate;
  if (result.sample_rate <= 0) fail_at(where, "audio stream has no sample rate");
  Trimmer trim;
  trim.skip = std::llround(std::max(0.0, opts.start_s) * result.sample_rate);
  if (opts.duration_s >= 0) trim.limit = std::llround(opts.duration_s * result.sample_rate);

  std::optional<MonoResampler> swr;
  std::vector<float> chunk;
  auto pkt = make_packet();
  auto frame = make_frame();
  int64_t frames = 0;
  int errors_in_row = 0;
  std::string last_error;
  bool demux_done = false;
  int64_t packets_read = 0;

  try {
    while (!trim.full()) {
      int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r >= 0) {
        ++frames;
        errors_in_row = 0;
        // Format changes mid-stream (rare, e.g. concatenated files) get a fresh resampler.
        if (swr && !swr->accepts(frame.get())) {
          chunk.clear();
          swr->flush(chunk);
          trim.take(chunk);
          swr.reset();
        }
        if (!swr)
          swr.emplace(frame->ch_layout, static_cast<AVSampleFormat>(frame->format),
                      frame->sample_rate, result.sample_rate);
        chunk.clear();
        swr->push(frame->extended_data, frame->nb_samples, chunk);
        trim.take(chunk);
        av_frame_unref(frame.get());
        continue;
      }
      if (r == AVERROR_EOF) break;
      if (r != AVERROR(EAGAIN)) {
        last_error = av_error_text(r);
        if (++errors_in_row >= kMaxConsecutiveErrors)
          fail_at(where, "corrupt audio stream ({} decode errors in a row: {})", errors_in_row,
                  last_error);
        continue;
      }
      if (demux_done) break;
      r = av_read_frame(fmt.get(), pkt.get());
      if (r < 0) {
        if (r != AVERROR_EOF && !(fmt->pb && avio_feof(fmt->pb)))
          fail_at(where, "corrupt or truncated (read error: {})", av_error_text(r));
        demux_done = true;
        check_not_truncated(where, fmt.get(), fmt->streams[aidx], packets_read, "audio");
        avcodec_send_packet(dec.get(), nullptr);
        continue;
      }
      if (pkt->stream_index == aidx) {
        ++packets_read;
        r = avcodec_send_packet(dec.get(), pkt.get());
        if (r < 0 && r != AVERROR(EAGAIN)) {
          // A damaged packet: the decoder conceals it; give up only on garbage.
          last_error = av_error_text(r);
          if (++errors_in_row >= kMaxConsecutiveErrors)
            fail_at(where, "corrupt audio stream ({} undecodable packets: {})", errors_in_row,
                    last_error);
        }
      }
      av_packet_unref(pkt.get());
    }
    if (swr && !trim.full()) {
      chunk.clear();
      swr->flush(chunk);
      trim.take(chunk);
    }
  } catch (...) {
    rethrow_with_context(where);
  }
  if (frames == 0)
    fail_at(where, "corrupt: no decodable audio{}", last_error.empty() ? "" : " (" + last_error + ")");
  result.samples = std::move(trim.out);
  return result;
}

std::vector<float> read_audio(const std::filesystem::path& path, const AudioDecodeOptions& opts) {
  return decode_audio(path, opts).samples;
}

}  // namespace hallo::media
