#pragma once
// Container/stream facts of a media file without decoding it.
#include <cstdint>
#include <filesystem>
#include <string>

namespace hallo::media {

struct MediaInfo {
  std::string path;
  bool has_video = false, has_audio = false;
  int width = 0, height = 0;          // coded size before rotation
  int rotation = 0;                   // degrees clockwise from display matrix / rotate tag (0/90/180/270)
  double fps = 0;                     // average frame rate
  double duration_s = 0;              // container duration (or best estimate)
  int64_t num_frames = 0;             // stream nb_frames or estimate from duration*fps
  std::string video_codec, audio_codec;
  int audio_sample_rate = 0, audio_channels = 0;

  // Size as displayed, i.e. after applying `rotation`.
  int display_width() const { return rotation % 180 ? height : width; }
  int display_height() const { return rotation % 180 ? width : height; }
};

// Throws hallo::Error naming the file: no such file, not a media file / truncated,
// corrupt. A file with only audio (or only video) is fine; check has_video/has_audio.
MediaInfo probe(const std::filesystem::path& path);

}  // namespace hallo::media
