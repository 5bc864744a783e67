#pragma once
// The face crop shared by `hallo prepare` (training clips) and `hallo animate`
// (the reference portrait), so a model sees faces framed the same way in both:
// a crop of crop_scale x the face size around the face box, resized to the model
// size, with Hallo's face-region and face / lip / pose masks.
#include <opencv2/core.hpp>

#include <memory>
#include <string>
#include <vector>

#include "data/face/landmarks.h"
#include "data/face/masks.h"

namespace hallo::face {

class FaceEmbedder;

// Crop of aspect out_w : out_h around `face` whose shorter side is crop_scale x
// max(face w, h) (at most the image), kept inside the image.
cv::Rect crop_around(const cv::Rect2f& face, float crop_scale, int image_w, int image_h, int out_w, int out_h);

struct ReferenceCropOptions {
  int width = 512, height = 512;  // model frame size
  float crop_scale = 2.0f;        // as `hallo prepare`'s crop_scale
  MaskConfig masks;               // masks.box_expand = upstream's face_expand_ratio
};

struct ReferenceCrop {
  cv::Mat image;             // CV_8UC3 RGB, height x width
  ClipMasks masks;           // face_region at full size, soft masks per level
  bool face_found = false;   // false: the whole image was used (see below)
  Landmarks68 landmarks{};   // in crop pixels (valid when face_found)
  cv::Rect crop;             // in source pixels
  std::vector<float> face_emb;  // ArcFace embedding; empty without an embedder or a face
};

// Largest face of `rgb`: crop, resize (INTER_AREA, as prepare), landmarks and masks.
// No face: the whole image resized, face box = the whole frame and lip box its
// lower-middle part (upstream also falls back to the whole image).
ReferenceCrop crop_reference(const cv::Mat& rgb, FaceAnalyzer& analyzer, FaceEmbedder* embedder,
                             const ReferenceCropOptions& o);

}  // namespace hallo::face
