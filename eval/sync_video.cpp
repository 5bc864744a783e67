#include "eval/sync_video.h"

#include <ATen/ATen.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "eval/face_track.h"

// syncnet_python's run_pipeline.py crop_video on the project's face track
// (eval/face_track.h): per-frame boxes -> (size, centre) medfilt 13 -> padded crop
// -> 224x224 BGR.
namespace hallo::eval {

namespace {

// Python's int() on a float: truncation towards zero.
int trunc_int(double v) { return static_cast<int>(std::trunc(v)); }

// One frame of crop_video: pad by bsi with 110, cut the face window, resize (INTER_LINEAR).
cv::Mat crop_frame(const cv::Mat& rgb, double bs, double cx, double cy, const SyncCropOptions& o,
                   const std::string& where, int index) {
  const double cs = o.crop_scale;
  const int bsi = trunc_int(bs * (1 + 2 * cs));
  cv::Mat bgr, padded;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);  // syncnet_python reads JPEGs with cv2: BGR
  cv::copyMakeBorder(bgr, padded, bsi, bsi, bsi, bsi, cv::BORDER_CONSTANT, cv::Scalar(110, 110, 110));
  const double my = cy + bsi, mx = cx + bsi;
  // numpy slicing clips the ends to the array. The starts are >= 0 for faces centred inside
  // the frame (bsi >= bs); numpy would wrap a negative start around, here it is clamped.
  const int r0 = std::max(0, trunc_int(my - bs)), r1 = std::min(padded.rows, trunc_int(my + bs * (1 + 2 * cs)));
  const int c0 = std::max(0, trunc_int(mx - bs * (1 + cs))), c1 = std::min(padded.cols, trunc_int(mx + bs * (1 + cs)));
  if (r1 <= r0 || c1 <= c0)
    fail_at(where, "frame {}: empty SyncNet face crop (smoothed box size {:.2f} px; clips under {} frames shrink it to 0)",
            index, bs, o.medfilt / 2 + 1);
  cv::Mat face;
  cv::resize(padded(cv::Range(r0, r1), cv::Range(c0, c1)), face, cv::Size(o.size, o.size), 0, 0, cv::INTER_LINEAR);
  return face;
}

}  // namespace

at::Tensor syncnet_face_crops(const std::vector<cv::Mat>& rgb_frames, const std::vector<cv::Rect2f>& boxes,
                              const std::string& where, const SyncCropOptions& o) {
  if (rgb_frames.empty()) fail_at(where, "has no frames");
  if (boxes.size() != rgb_frames.size())
    fail_at(where, "{} face boxes for {} frames", boxes.size(), rgb_frames.size());
  if (o.medfilt < 1 || o.medfilt % 2 == 0) fail_at(where, "SyncNet box filter length {} must be odd", o.medfilt);
  const int n = static_cast<int>(boxes.size());
  // Detection size (half the longer side) and centre, each smoothed over time.
  std::vector<double> s(n), x(n), y(n);
  for (int i = 0; i < n; ++i) {
    const double x1 = boxes[i].x, y1 = boxes[i].y, x2 = x1 + boxes[i].width, y2 = y1 + boxes[i].height;
    s[i] = std::max(y2 - y1, x2 - x1) / 2;
    y[i] = (y1 + y2) / 2;
    x[i] = (x1 + x2) / 2;
  }
  s = medfilt_zero_padded(s, o.medfilt);
  x = medfilt_zero_padded(x, o.medfilt);
  y = medfilt_zero_padded(y, o.medfilt);

  at::Tensor out = at::empty({n, o.size, o.size, 3}, at::kByte);  // [T,224,224,3] BGR
  for (int i = 0; i < n; ++i) {
    face::require_rgb(rgb_frames[i], where);
    const cv::Mat face = crop_frame(rgb_frames[i], s[i], x[i], y[i], o, where, i);
    cv::Mat dst(o.size, o.size, CV_8UC3, out[i].data_ptr<uint8_t>());
    face.copyTo(dst);
  }
  return out;
}

at::Tensor audio_to_pcm16(const std::vector<float>& audio) {
  at::Tensor out = at::empty({static_cast<int64_t>(audio.size())}, at::kShort);
  int16_t* p = out.data_ptr<int16_t>();
  for (size_t i = 0; i < audio.size(); ++i) {
    // ffmpeg's flt -> s16 conversion: round to nearest, saturate.
    const long v = std::lrint(static_cast<double>(audio[i]) * 32768.0);
    p[i] = static_cast<int16_t>(std::clamp<long>(v, -32768, 32767));
  }
  return out;
}

}  // namespace hallo::eval
