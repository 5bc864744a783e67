#pragma once
// One prepared training clip, as `hallo prepare` hands it to the shard writer
// and as the shard reader gives it back. Torch-free so the writer can run in
// tools that never load libtorch.
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include <string>
#include <vector>

namespace hallo::data {

enum class FrameStorage { Jpeg, Raw };

// "jpeg" / "raw": the spelling used in shard attributes and index.json.
const char* frame_storage_name(FrameStorage s);
FrameStorage parse_frame_storage(const std::string& name, const std::string& where);

struct ClipRecord {
  std::string id;      // unique within a dataset, e.g. "<video>_s<seg>_c<clip>"
  std::string source;  // source video path
  double t_start = 0, t_end = 0, fps = 25;
  int num_frames = 0, height = 0, width = 0;
  std::vector<cv::Mat> frames;  // CV_8UC3 RGB, all height x width
  // Audio features aligned to frames: [num_frames, audio_layers, audio_dim] (stored float16).
  std::vector<float> audio;
  int audio_layers = 0, audio_dim = 0;
  std::string audio_extractor;  // e.g. "wav2vec2:<config hash>"; samplers refuse to mix
  cv::Mat face_region;          // CV_8UC1 height x width (face-locator mask)
  // 4 levels each (H/8, H/16, H/32, H/64), CV_8UC1; empty = not prepared.
  std::vector<cv::Mat> lip_masks, face_masks, pose_masks;
  std::vector<float> face_emb;  // 512 (zeros when no ArcFace model), or empty
  bool face_emb_valid = false;
  // Optional VAE latents [num_frames, latent_channels, H/8, W/8] (stored float16).
  std::vector<float> latent_mean, latent_std;
  int latent_channels = 0;
  std::vector<float> face_boxes;  // [F,4] x0,y0,x1,y1 in clip pixel coordinates, or empty
  std::vector<float> landmarks;   // [F,68,2], or empty
  nlohmann::json meta;            // quality scores, pose stats, ... (stored as a JSON string)
};

constexpr int kMaskLevels = 4;

// Throws hallo::Error naming `where` and the clip id when the record is
// inconsistent (sizes, types, counts). The writer calls this before touching a file.
void validate_clip(const ClipRecord& clip, const std::string& where);

// Checks that `id` can be an HDF5 link name and a file-name fragment.
void validate_clip_id(const std::string& id, const std::string& where);

}  // namespace hallo::data
