#include "media/probe.h"

#include <cmath>

#include "media/av_common.h"

namespace hallo::media {

namespace detail {

MediaInfo describe(AVFormatContext* fmt, const std::filesystem::path& path) {
  MediaInfo info;
  info.path = path.string();
  if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
    info.duration_s = static_cast<double>(fmt->duration) / AV_TIME_BASE;

  if (const int v = find_stream(fmt, AVMEDIA_TYPE_VIDEO); v >= 0) {
    const AVStream* st = fmt->streams[v];
    const AVCodecParameters* par = st->codecpar;
    info.has_video = true;
    info.width = par->width;
    info.height = par->height;
    info.rotation = stream_rotation(st);
    info.video_codec = avcodec_get_name(par->codec_id);
    AVRational rate = st->avg_frame_rate;
    if (rate.num <= 0 || rate.den <= 0) rate = st->r_frame_rate;
    if (rate.num > 0 && rate.den > 0) info.fps = av_q2d(rate);
    double stream_dur = 0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
      stream_dur = static_cast<double>(st->duration) * av_q2d(st->time_base);
    if (info.duration_s <= 0) info.duration_s = stream_dur;
    if (st->nb_frames > 0) {
      info.num_frames = st->nb_frames;
    } else if (info.fps > 0) {
      const double d = stream_dur > 0 ? stream_dur : info.duration_s;
      info.num_frames = static_cast<int64_t>(std::llround(d * info.fps));
    }
  }
  if (const int a = find_stream(fmt, AVMEDIA_TYPE_AUDIO); a >= 0) {
    const AVStream* st = fmt->streams[a];
    info.has_audio = true;
    info.audio_codec = avcodec_get_name(st->codecpar->codec_id);
    info.audio_sample_rate = st->codecpar->sample_rate;
    info.audio_channels = st->codecpar->ch_layout.nb_channels;
    if (info.duration_s <= 0 && st->duration != AV_NOPTS_VALUE && st->duration > 0)
      info.duration_s = static_cast<double>(st->duration) * av_q2d(st->time_base);
  }
  return info;
}

}  // namespace detail

MediaInfo probe(const std::filesystem::path& path) {
  auto fmt = detail::open_input(path);
  return detail::describe(fmt.get(), path);
}

}  // namespace hallo::media
