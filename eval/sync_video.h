#pragma once
// SyncNet's input from a talking-head video, the way syncnet_python's
// run_pipeline.py prepares it, with the project's face tracking in place of S3FD:
// one face track over the clip (frames where the detector misses reuse the
// nearest box), box size and centre median-filtered over 13 frames, the frame
// padded by bs*(1+2*crop_scale) with value 110, the crop
// [cy-bs, cy+bs*(1+2cs)) x [cx-bs*(1+cs), cx+bs*(1+cs)) resized to 224x224 (BGR).
#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "data/face/landmarks.h"
#include "eval/sync_math.h"

namespace hallo::eval {

struct SyncCropOptions {
  double crop_scale = 0.4;  // syncnet_python's --crop_scale
  int medfilt = 13;         // box smoothing (odd)
  int size = 224;
  // Frames whose shorter side is below this are upscaled (bicubic) for face detection
  // only (dlib's HOG detector misses faces under ~80 px; generated videos are often 128 px).
  int detect_min_side = 256;
};

// rgb frames (CV_8UC3, RGB) -> [T,224,224,3] uint8 BGR crops. Throws hallo::Error naming
// `where` when no frame has a face.
at::Tensor syncnet_face_crops(const std::vector<cv::Mat>& rgb_frames, face::FaceAnalyzer& faces,
                              const std::string& where, const SyncCropOptions& o = {});
// The same crops from a face box per frame (e.g. FaceTrack::boxes, in frame pixels), for
// callers that already tracked the face for other metrics.
at::Tensor syncnet_face_crops(const std::vector<cv::Mat>& rgb_frames, const std::vector<cv::Rect2f>& boxes,
                              const std::string& where, const SyncCropOptions& o = {});

// Mono float audio (-1..1) -> int16 the way ffmpeg's pcm_s16le encoder converts it:
// lrint(x * 32768) saturated to [-32768, 32767].  -> I16 [S]
at::Tensor audio_to_pcm16(const std::vector<float>& audio);

// Per-video Sync numbers from decoded frames (25 fps) and mono float audio at 16 kHz
// (converted to int16 like ffmpeg's pcm_s16le).
SyncEvaluation sync_video(nets::SyncNetImpl& net, const std::vector<cv::Mat>& rgb_frames,
                          const std::vector<float>& audio_16k, face::FaceAnalyzer& faces, const std::string& where,
                          const SyncCropOptions& o = {});

}  // namespace hallo::eval
