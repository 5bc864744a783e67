#pragma once
// A reference portrait file -> the model inputs derived from it, through the face
// crop `hallo prepare` uses (data/face/reference_crop.h) and the samplers' tensor
// conversion (data/dataset/image_tensors.h), so training and inference cannot drift.
#include <ATen/core/Tensor.h>

#include <filesystem>

#include "data/face/reference_crop.h"
#include "model/hallo/audio_attention.h"

namespace hallo::inference {

struct ReferenceTensors {
  face::ReferenceCrop crop;  // the cropped image, landmarks and masks
  at::Tensor image;          // [3, H, W] in [-1, 1]
  at::Tensor face_region;    // [1, 3, H, W] in {0, 1}
  model::AudioMasks masks;   // per level [1, h_l * w_l]
  at::Tensor face_emb;       // [1, 512]; zeros without an ArcFace model
};

// Reads an image file (any format OpenCV reads); errors name the file.
cv::Mat read_rgb_image(const std::filesystem::path& file);

ReferenceTensors reference_tensors(const face::ReferenceCrop& crop, int64_t emb_dim = 512);

}  // namespace hallo::inference
