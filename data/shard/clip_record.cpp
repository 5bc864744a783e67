#include "data/shard/clip_record.h"

#include "core/error.h"

namespace hallo::data {

const char* frame_storage_name(FrameStorage s) { return s == FrameStorage::Jpeg ? "jpeg" : "raw"; }

FrameStorage parse_frame_storage(const std::string& name, const std::string& where) {
  if (name == "jpeg") return FrameStorage::Jpeg;
  if (name == "raw") return FrameStorage::Raw;
  fail_at(where, "unknown frame storage '{}' (expected jpeg or raw)", name);
}

void validate_clip_id(const std::string& id, const std::string& where) {
  if (id.empty()) fail_at(where, "clip id is empty");
  if (id.size() > 255) fail_at(where, "clip id '{}' is longer than 255 characters", id);
  if (id == "." || id == "..") fail_at(where, "clip id '{}' is not allowed", id);
  for (char c : id) {
    // '/' would create nested HDF5 groups; control characters break index.json tooling.
    if (c == '/' || static_cast<unsigned char>(c) < 0x20)
      fail_at(where, "clip id '{}' contains '/' or a control character", id);
  }
}

namespace {

void check_masks(const std::vector<cv::Mat>& masks, const char* kind, const std::string& where,
                 const std::string& id) {
  if (masks.empty()) return;
  if (masks.size() != static_cast<size_t>(kMaskLevels))
    fail_at(where, "clip '{}': {} masks have {} levels, expected {}", id, kind, masks.size(),
            kMaskLevels);
  for (size_t l = 0; l < masks.size(); ++l) {
    if (masks[l].empty() || masks[l].type() != CV_8UC1)
      fail_at(where, "clip '{}': {} mask level {} must be a non-empty CV_8UC1 image", id, kind, l);
  }
}

void check_size(size_t got, size_t want, const char* what, const std::string& where,
                const std::string& id) {
  if (got != want)
    fail_at(where, "clip '{}': {} has {} values, expected {}", id, what, got, want);
}

}  // namespace

void validate_clip(const ClipRecord& c, const std::string& where) {
  validate_clip_id(c.id, where);
  const std::string& id = c.id;
  if (c.num_frames <= 0) fail_at(where, "clip '{}': num_frames is {}", id, c.num_frames);
  if (c.height <= 0 || c.width <= 0)
    fail_at(where, "clip '{}': frame size {}x{} is invalid", id, c.width, c.height);
  if (c.frames.size() != static_cast<size_t>(c.num_frames))
    fail_at(where, "clip '{}': {} frames given, num_frames is {}", id, c.frames.size(),
            c.num_frames);
  for (size_t f = 0; f < c.frames.size(); ++f) {
    const cv::Mat& m = c.frames[f];
    if (m.type() != CV_8UC3 || m.rows != c.height || m.cols != c.width)
      fail_at(where, "clip '{}': frame {} must be CV_8UC3 {}x{} (got type {} {}x{})", id, f,
              c.width, c.height, m.type(), m.cols, m.rows);
  }
  const size_t F = static_cast<size_t>(c.num_frames);
  if (c.audio_layers < 0 || c.audio_dim < 0 || ((c.audio_layers == 0) != (c.audio_dim == 0)))
    fail_at(where, "clip '{}': audio shape [{}, {}] is invalid", id, c.audio_layers, c.audio_dim);
  check_size(c.audio.size(), F * c.audio_layers * c.audio_dim, "audio", where, id);
  if (!c.audio.empty() && c.audio_extractor.empty())
    fail_at(where, "clip '{}': audio features given without audio_extractor", id);
  if (!c.face_region.empty() &&
      (c.face_region.type() != CV_8UC1 || c.face_region.rows != c.height ||
       c.face_region.cols != c.width))
    fail_at(where, "clip '{}': face_region must be CV_8UC1 {}x{}", id, c.width, c.height);
  check_masks(c.lip_masks, "lip", where, id);
  check_masks(c.face_masks, "face", where, id);
  check_masks(c.pose_masks, "pose", where, id);
  if (!c.latent_mean.empty() || !c.latent_std.empty() || c.latent_channels != 0) {
    const size_t per = F * c.latent_channels * (c.height / 8) * (c.width / 8);
    if (c.latent_channels <= 0 || per == 0)
      fail_at(where, "clip '{}': latents need latent_channels > 0 and frames of at least 8x8", id);
    check_size(c.latent_mean.size(), per, "latent_mean", where, id);
    check_size(c.latent_std.size(), per, "latent_std", where, id);
  }
  if (!c.face_boxes.empty()) check_size(c.face_boxes.size(), F * 4, "face_boxes", where, id);
  if (!c.landmarks.empty()) check_size(c.landmarks.size(), F * 68 * 2, "landmarks", where, id);
}

}  // namespace hallo::data
