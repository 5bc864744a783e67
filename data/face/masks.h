#pragma once
// Hallo's per-clip masks from the clip's union face and lip boxes:
//   face_region : hard face box at full resolution (face-locator input);
//   lip / face / pose : soft masks at the four latent levels (H/8, H/16, ... for
//   the default 4 levels), used to weight the hierarchical audio attention.
// Soft masks follow upstream: rasterise the box, shrink to the level-0 size
// (H/8 x W/8), Gaussian-blur, min-max to 0..255; then
//   lip  = blur(lip box)
//   face = blur(face box) - lip   (saturating at 0)
//   pose = 255 - blur(face box)
// and every coarser level is an area-resize of the level-0 blurred masks.
#include <opencv2/core.hpp>

#include <vector>

namespace hallo::face {

struct MaskConfig {
  // Blur kernel sizes are given for a level-0 mask of this side (upstream: 64 px
  // masks from 512 px frames, kernels 51 / 31). For other sizes they are scaled
  // per axis by level0_side / mask_size_ref and rounded to the nearest odd size,
  // so the blur covers the same fraction of the frame at every resolution.
  int mask_size_ref = 64;
  int face_blur = 51;
  int lip_blur = 31;
  float box_expand = 1.0f;  // face box scale about its centre (shifted back inside the frame)
  int levels = 4;
  float lip_expand = 1.0f;  // lip box scale about its centre
};

struct ClipMasks {
  cv::Mat face_region;                   // CV_8UC1 HxW at full res: 255 inside the hard face box
  std::vector<cv::Mat> lip, face, pose;  // per level l: CV_8UC1 (H/8>>l) x (W/8>>l), l=0..levels-1
};

// face / lip boxes in full-res pixel coords (union over the clip); size = full-res
// image size. Throws hallo::Error on sizes too small for the requested levels or
// on non-positive config values.
ClipMasks make_masks(cv::Rect2f face, cv::Rect2f lip, cv::Size size, const MaskConfig& cfg = {});

// Box scaled by `ratio` about its centre, shifted back inside [0,size) where it
// sticks out, then clipped (upstream expand_region).
cv::Rect2f expand_box(cv::Rect2f box, float ratio, cv::Size size);
// CV_8UC1 mask of `size`: 255 on pixel columns [round(x), round(x+w)) and rows
// [round(y), round(y+h)) clipped to the image, 0 elsewhere.
cv::Mat box_mask(cv::Rect2f box, cv::Size size);
// Kernel size for a mask dimension: ref_kernel * dim / ref_dim rounded to odd, >= 1.
int scaled_kernel(int ref_kernel, int dim, int ref_dim);

}  // namespace hallo::face
