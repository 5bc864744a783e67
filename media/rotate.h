#pragma once
// Right-angle rotation of packed RGB24 images (display-matrix rotation of phone videos).
#include <cstdint>
#include <vector>

namespace hallo::media {

// Rotates a width x height packed RGB24 image clockwise by `degrees_cw`
// (0, 90, 180 or 270). The result is height x width for 90/270.
std::vector<uint8_t> rotate_rgb(const uint8_t* rgb, int width, int height, int degrees_cw);

}  // namespace hallo::media
