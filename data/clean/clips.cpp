// Fixed-length training clips from the kept segments.
#include "core/error.h"
#include "data/clean/clean.h"

namespace hallo::clean {

std::vector<std::pair<int, int>> cut_clips(const std::vector<Segment>& kept, int length, int stride,
                                          int min_length) {
  if (length <= 0) fail_at("cut_clips", "clip length must be > 0, got {}", length);
  if (stride < 0) fail_at("cut_clips", "clip stride must be >= 0, got {}", stride);
  const int step = stride == 0 ? length : stride;
  std::vector<std::pair<int, int>> clips;
  for (const Segment& s : kept) {
    // A clip never straddles two segments: the frames between them were dropped.
    // Written as `b <= end - length` so huge lengths cannot overflow.
    long long covered = s.begin;  // first frame no clip holds yet
    for (long long b = s.begin; b <= static_cast<long long>(s.end) - length; b += step) {
      clips.emplace_back(static_cast<int>(b), static_cast<int>(b + length));
      covered = b + length;
    }
    // The frames after the last whole clip (or a segment shorter than one clip) become a
    // shorter clip when they are at least min_length: nothing usable is thrown away.
    if (min_length > 0 && static_cast<long long>(s.end) - covered >= min_length)
      clips.emplace_back(static_cast<int>(covered), s.end);
  }
  return clips;
}

}  // namespace hallo::clean
