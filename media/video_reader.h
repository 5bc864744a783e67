#pragma once
// Streaming video decoding to packed RGB24 frames at a fixed output rate.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>

#include "media/probe.h"

namespace hallo::media {

struct RgbFrame {                     // packed RGB24, row-major, height*width*3 bytes
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  int64_t index = 0;                  // output frame index at the target fps
  double time_s = 0;                  // index / fps (source pts - start_s when fps <= 0)
};

struct VideoDecodeOptions {
  double fps = 25.0;                  // output rate: frames duplicated/dropped by timestamp (handles VFR); <=0 keeps source frames
  int out_width = 0, out_height = 0;  // 0 = source size (after rotation); else resize (libswscale, area/bicubic);
                                      // if only one is set the other keeps the aspect ratio
  bool center_crop_square = false;    // crop the centred square before resizing
  bool apply_rotation = true;
  double start_s = 0, duration_s = -1;
  int64_t max_frames = -1;
};

// Output frame i (time start_s + i/fps) shows the latest source frame whose pts is
// <= that time; the stream ends at the last frame's pts + duration, so a clip of
// D seconds gives round(D*fps) frames. Holds at most two decoded frames.
// Throws hallo::Error naming the file (missing, not media, no video stream,
// truncated); undecodable packets are skipped.
class VideoReader {
 public:
  VideoReader(const std::filesystem::path& path, VideoDecodeOptions opts = {});
  ~VideoReader();
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;

  const MediaInfo& info() const;
  // Size of the frames next() returns.
  int out_width() const;
  int out_height() const;
  bool next(RgbFrame& out);           // false at end of stream

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::vector<RgbFrame> read_video(const std::filesystem::path& path, const VideoDecodeOptions& opts = {});

}  // namespace hallo::media
