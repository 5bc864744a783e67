#pragma once
// SyncNet's input from a talking-head video, the way syncnet_python's
// run_pipeline.py crop_video prepares it, from face boxes the caller tracked (the
// evaluator passes boxes derived from its shared dlib face track; syncnet_python
// uses S3FD): box size (half the longer side) and centre median-filtered over 13
// frames, the frame padded by bs*(1+2*crop_scale) with value 110, the crop
// [cy-bs, cy+bs*(1+2cs)) x [cx-bs*(1+cs), cx+bs*(1+cs)) resized to 224x224 (BGR).
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "eval/sync_math.h"

namespace hallo::eval {

struct SyncCropOptions {
  double crop_scale = 0.4;  // syncnet_python's --crop_scale
  int medfilt = 13;         // box smoothing (odd)
  int size = 224;
};

// rgb frames (CV_8UC3, RGB) and one face box per frame (frame pixels) -> [T,224,224,3]
// uint8 BGR crops. Throws hallo::Error naming `where` on empty input or an empty crop.
at::Tensor syncnet_face_crops(const std::vector<cv::Mat>& rgb_frames, const std::vector<cv::Rect2f>& boxes,
                              const std::string& where, const SyncCropOptions& o = {});

// Mono float audio (-1..1) -> int16 the way ffmpeg's pcm_s16le encoder converts it:
// lrint(x * 32768) saturated to [-32768, 32767].  -> I16 [S]
at::Tensor audio_to_pcm16(const std::vector<float>& audio);

}  // namespace hallo::eval
