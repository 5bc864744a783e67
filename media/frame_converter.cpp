#include "media/frame_converter.h"

extern "C" {
#include <libavutil/pixdesc.h>
}

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "media/rotate.h"

namespace hallo::media::detail {

FrameConverter::FrameConverter(int rotation_cw, bool crop_square, int out_width, int out_height)
    : rotation_(rotation_cw), crop_square_(crop_square), out_w_(out_width), out_h_(out_height) {}

void FrameConverter::output_size(int src_w, int src_h, int* w, int* h) const {
  int cw = src_w, ch = src_h;
  if (crop_square_) cw = ch = std::min(src_w, src_h);
  const bool swap = rotation_ % 180 != 0;
  const int dw = swap ? ch : cw, dh = swap ? cw : ch;
  if (out_w_ > 0 && out_h_ > 0) {
    *w = out_w_;
    *h = out_h_;
  } else if (out_w_ > 0) {
    *w = out_w_;
    *h = std::max(1, static_cast<int>(std::lround(static_cast<double>(out_w_) * dh / dw)));
  } else if (out_h_ > 0) {
    *h = out_h_;
    *w = std::max(1, static_cast<int>(std::lround(static_cast<double>(out_h_) * dw / dh)));
  } else {
    *w = dw;
    *h = dh;
  }
}

void FrameConverter::convert(AVFrame* frame, std::vector<uint8_t>& rgb, int* w, int* h) {
  if (frame->width <= 0 || frame->height <= 0) fail("decoded frame has no size");
  output_size(frame->width, frame->height, w, h);
  if (crop_square_ && frame->width != frame->height) {
    const int side = std::min(frame->width, frame->height);
    const int x0 = (frame->width - side) / 2, y0 = (frame->height - side) / 2;
    frame->crop_left = x0;
    frame->crop_right = frame->width - side - x0;
    frame->crop_top = y0;
    frame->crop_bottom = frame->height - side - y0;
    // UNALIGNED keeps the crop centred; libav still snaps it to the chroma grid.
    const int err = av_frame_apply_cropping(frame, AV_FRAME_CROP_UNALIGNED);
    if (err < 0) fail("cannot crop frame: {}", av_error_text(err));
  }
  const int src_w = frame->width, src_h = frame->height;
  // Scale to the pre-rotation size so the rotation is a pure pixel shuffle.
  const bool swap = rotation_ % 180 != 0;
  const int sw = swap ? *h : *w, sh = swap ? *w : *h;
  const auto src_fmt = static_cast<AVPixelFormat>(frame->format);
  // Area averaging for downscales (no aliasing), bicubic otherwise.
  const int flags = (static_cast<int64_t>(sw) * sh < static_cast<int64_t>(src_w) * src_h)
                        ? SWS_AREA
                        : SWS_BICUBIC;
  SwsContext* ctx = sws_getCachedContext(sws_.release(), src_w, src_h, src_fmt, sw, sh,
                                         AV_PIX_FMT_RGB24, flags, nullptr, nullptr, nullptr);
  sws_.reset(ctx);
  if (!ctx)
    fail("cannot convert {} {}x{} frames to RGB", av_get_pix_fmt_name(src_fmt), src_w, src_h);

  // Honour the stream's YUV matrix and range (BT.709 HD, full-range JPEG-style).
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(src_fmt);
  if (desc && !(desc->flags & AV_PIX_FMT_FLAG_RGB)) {
    const bool full_range = frame->color_range == AVCOL_RANGE_JPEG || src_fmt == AV_PIX_FMT_YUVJ420P ||
                            src_fmt == AV_PIX_FMT_YUVJ422P || src_fmt == AV_PIX_FMT_YUVJ444P;
    sws_setColorspaceDetails(ctx, sws_getCoefficients(frame->colorspace), full_range ? 1 : 0,
                             sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
  }

  // libswscale's SIMD paths write a little past the last pixel of a row, so it
  // draws into an aligned, padded buffer and the rows are packed afterwards.
  const int stride = FFALIGN(sw * 3, 64);
  scratch_.resize(static_cast<size_t>(stride) * (sh + 1));
  uint8_t* dst_data[4] = {scratch_.data(), nullptr, nullptr, nullptr};
  int dst_stride[4] = {stride, 0, 0, 0};
  const int rows = sws_scale(ctx, frame->data, frame->linesize, 0, src_h, dst_data, dst_stride);
  if (rows <= 0) fail("libswscale failed on a {}x{} frame", src_w, src_h);
  const size_t row_bytes = static_cast<size_t>(sw) * 3;
  packed_.resize(row_bytes * sh);
  for (int y = 0; y < sh; ++y)
    std::memcpy(packed_.data() + y * row_bytes, scratch_.data() + static_cast<size_t>(y) * stride, row_bytes);
  if (rotation_)
    rgb = rotate_rgb(packed_.data(), sw, sh, rotation_);
  else
    rgb.swap(packed_);
}

}  // namespace hallo::media::detail
