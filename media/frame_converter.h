#pragma once
// Decoded AVFrame -> packed RGB24 at the requested display size: centre-square
// crop, one libswscale pass (format + size), then the display rotation.
// Internal to hallo_media.
#include <cstdint>
#include <vector>

#include "media/av_common.h"

namespace hallo::media::detail {

class FrameConverter {
 public:
  FrameConverter(int rotation_cw, bool crop_square, int out_width, int out_height);

  // Display size of the output for a src_w x src_h coded frame.
  void output_size(int src_w, int src_h, int* w, int* h) const;

  // Converts `frame` (cropping modifies its data pointers) into `rgb`.
  void convert(AVFrame* frame, std::vector<uint8_t>& rgb, int* w, int* h);

 private:
  int rotation_;
  bool crop_square_;
  int out_w_, out_h_;
  SwsPtr sws_;
  std::vector<uint8_t> scratch_;  // [sh + 1, stride] libswscale output
  std::vector<uint8_t> packed_;   // [sh, sw, 3] before rotation
};

}  // namespace hallo::media::detail
