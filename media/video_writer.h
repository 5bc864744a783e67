#pragma once
// H.264 (+ AAC) video writing with an all-or-nothing result on disk.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace hallo::media {

struct EncodeOptions {
  double fps = 25.0;
  int crf = 18; std::string preset = "medium";   // libx264, yuv420p
  int audio_bitrate = 128000;                     // AAC (libav's native "aac" encoder)
};

// Frames are encoded as they arrive (only compressed packets are kept, a few
// MB per minute); close() muxes video and audio, interleaved, into a temp file in
// the target's directory and renames it over the target. The container follows
// the extension (.mp4/.mov get +faststart, .mkv works too).
// Odd sizes: yuv420p needs even dimensions, so the last column/row is repeated
// to pad the picture to even size; a 99x75 input decodes as 100x76.
class VideoWriter {
 public:
  VideoWriter(const std::filesystem::path& path, int width, int height, EncodeOptions opts = {});
  ~VideoWriter();                     // without close(): temp file removed, target untouched
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write_rgb(const uint8_t* rgb); // height*width*3 bytes, packed RGB24
  void set_audio(std::vector<float> mono, int sample_rate);   // muxed as AAC, trimmed/padded to video length
  void set_audio_file(const std::filesystem::path& audio_src); // decoded via read_audio
  void close();

  int64_t frames_written() const;
  // Encoded picture size (input size rounded up to even).
  int encoded_width() const;
  int encoded_height() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::media
