#include "media/rotate.h"

#include <cstring>

#include "core/error.h"

namespace hallo::media {

std::vector<uint8_t> rotate_rgb(const uint8_t* rgb, int width, int height, int degrees_cw) {
  const size_t n = static_cast<size_t>(width) * height * 3;
  std::vector<uint8_t> out(n);
  if (degrees_cw == 0) {
    std::memcpy(out.data(), rgb, n);
    return out;
  }
  if (degrees_cw != 90 && degrees_cw != 180 && degrees_cw != 270)
    fail("rotate_rgb: unsupported rotation {} (want 0/90/180/270)", degrees_cw);
  // Source pixel (x, y) lands at (dx, dy) of a dw-wide destination.
  const int dw = degrees_cw == 180 ? width : height;
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = rgb + static_cast<size_t>(y) * width * 3;
    for (int x = 0; x < width; ++x) {
      int dx, dy;
      if (degrees_cw == 90) {
        dx = height - 1 - y;
        dy = x;
      } else if (degrees_cw == 180) {
        dx = width - 1 - x;
        dy = height - 1 - y;
      } else {  // 270
        dx = y;
        dy = width - 1 - x;
      }
      std::memcpy(&out[(static_cast<size_t>(dy) * dw + dx) * 3], row + x * 3, 3);
    }
  }
  return out;
}

}  // namespace hallo::media
