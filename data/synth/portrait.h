#pragma once
// The still portrait a synthetic clip animates: a square crop around the one
// face, resized to the output size, with its 68 landmarks.
#include <opencv2/core.hpp>

#include <filesystem>

#include "data/face/landmarks.h"

namespace hallo::synth {

struct Portrait {
  cv::Mat rgb;              // [size, size] CV_8UC3, RGB
  face::Landmarks68 lm{};   // detected on `rgb`
  cv::Rect crop;            // square of the source image that `rgb` shows
  std::filesystem::path source;
};

// ${HALLO_ASSETS_DIR}/astronaut.png, else the repository's assets/astronaut.png.
std::filesystem::path default_portrait_path();

// Loads `path`, finds its largest face, crops a square of crop_scale times the
// face box (forehead included) around it (crop_scale <= 0: the centred square
// of the whole image), resizes it to size x size and detects the landmarks
// again there. Throws hallo::Error naming the path if it is missing, not an
// image, or has no detectable face.
Portrait load_portrait(const std::filesystem::path& path, int size, double crop_scale, face::FaceAnalyzer& analyzer);

}  // namespace hallo::synth
