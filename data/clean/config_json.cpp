// CleanConfig <-> JSON, and the range checks every entry point relies on.
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "data/clean/clean.h"

namespace hallo::clean {
namespace {

template <typename T>
void read_field(const nlohmann::json& j, const char* key, T& out, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if (!it->is_number()) fail_at(where, "field '{}' must be a number, got {}", key, it->dump());
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) fail_at(where, "field '{}' must be an integer, got {}", key, it->dump());
    const double v = it->get<double>();
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      fail_at(where, "field '{}' is out of range: {}", key, it->dump());
    }
  }
  out = it->get<T>();
}

}  // namespace

CleanConfig clean_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail_at(where, "clean config must be a JSON object, got {}", j.type_name());
  CleanConfig c;
  const nlohmann::json defaults = clean_config_to_json(c);
  for (const auto& [key, value] : j.items()) {
    if (!defaults.contains(key)) fail_at(where, "unknown clean config field '{}'", key);
  }
  read_field(j, "fps", c.fps, where);
  read_field(j, "scene_cut_threshold", c.scene_cut_threshold, where);
  read_field(j, "max_camera_motion", c.max_camera_motion, where);
  read_field(j, "max_face_motion", c.max_face_motion, where);
  read_field(j, "max_face_scale_change", c.max_face_scale_change, where);
  read_field(j, "max_yaw", c.max_yaw, where);
  read_field(j, "min_lip_audio_corr", c.min_lip_audio_corr, where);
  read_field(j, "min_mouth_std", c.min_mouth_std, where);
  read_field(j, "min_voice_ratio", c.min_voice_ratio, where);
  read_field(j, "min_segment_s", c.min_segment_s, where);
  read_field(j, "max_av_frame_diff", c.max_av_frame_diff, where);
  read_field(j, "min_faces_bad_run", c.min_faces_bad_run, where);
  read_field(j, "silence_rms", c.silence_rms, where);
  read_field(j, "motion_window", c.motion_window, where);
  read_field(j, "lip_audio_max_lag", c.lip_audio_max_lag, where);
  read_field(j, "face_mask_margin", c.face_mask_margin, where);
  validate(c, where);
  return c;
}

nlohmann::json clean_config_to_json(const CleanConfig& c) {
  return {{"fps", c.fps},
          {"scene_cut_threshold", c.scene_cut_threshold},
          {"max_camera_motion", c.max_camera_motion},
          {"max_face_motion", c.max_face_motion},
          {"max_face_scale_change", c.max_face_scale_change},
          {"max_yaw", c.max_yaw},
          {"min_lip_audio_corr", c.min_lip_audio_corr},
          {"min_mouth_std", c.min_mouth_std},
          {"min_voice_ratio", c.min_voice_ratio},
          {"min_segment_s", c.min_segment_s},
          {"max_av_frame_diff", c.max_av_frame_diff},
          {"min_faces_bad_run", c.min_faces_bad_run},
          {"silence_rms", c.silence_rms},
          {"motion_window", c.motion_window},
          {"lip_audio_max_lag", c.lip_audio_max_lag},
          {"face_mask_margin", c.face_mask_margin}};
}

void validate(const CleanConfig& c, const std::string& where) {
  // `!(x >= 0)` also rejects NaN.
  auto non_negative = [&](double v, const char* name) {
    if (!(v >= 0)) fail_at(where, "clean config '{}' must be >= 0, got {}", name, v);
  };
  if (!(c.fps > 0)) fail_at(where, "clean config 'fps' must be > 0, got {}", c.fps);
  non_negative(c.scene_cut_threshold, "scene_cut_threshold");
  non_negative(c.max_camera_motion, "max_camera_motion");
  non_negative(c.max_face_motion, "max_face_motion");
  non_negative(c.max_face_scale_change, "max_face_scale_change");
  non_negative(c.max_yaw, "max_yaw");
  if (!(c.min_mouth_std >= 0)) fail_at(where, "clean config 'min_mouth_std' must be >= 0, got {}", c.min_mouth_std);
  if (!(c.min_lip_audio_corr >= -1 && c.min_lip_audio_corr <= 1)) {
    fail_at(where, "clean config 'min_lip_audio_corr' must be in [-1, 1], got {}", c.min_lip_audio_corr);
  }
  if (!(c.min_voice_ratio >= 0 && c.min_voice_ratio <= 1)) {
    fail_at(where, "clean config 'min_voice_ratio' must be in [0, 1], got {}", c.min_voice_ratio);
  }
  non_negative(c.min_segment_s, "min_segment_s");
  non_negative(c.max_av_frame_diff, "max_av_frame_diff");
  if (c.min_faces_bad_run < 1) fail_at(where, "clean config 'min_faces_bad_run' must be >= 1, got {}", c.min_faces_bad_run);
  non_negative(c.silence_rms, "silence_rms");
  if (c.motion_window < 1) fail_at(where, "clean config 'motion_window' must be >= 1, got {}", c.motion_window);
  non_negative(c.lip_audio_max_lag, "lip_audio_max_lag");
  non_negative(c.face_mask_margin, "face_mask_margin");
}

}  // namespace hallo::clean
