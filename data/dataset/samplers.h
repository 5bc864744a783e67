#pragma once
// Stage-1 / stage-2 training samplers over a shard directory, producing
// libtorch batches in the layout the Hallo trainer consumes.
//
// Determinism: every sample's randomness is derived from (seed, rank, epoch,
// position in the epoch) alone, so a run is reproducible and next(4)+next(4)
// equals next(8). Ranks take disjoint, equally sized blocks of the eligible
// clips (index order, remainder dropped), which keeps each rank on few shards.
//
// VAE latents: when every clip of the dataset stores them (`hallo prepare --vae`)
// and the sampler does not resize, batches also carry the posterior mean/std of
// the sampled frames, so training can skip VAE encoding. Otherwise the latent
// tensors are undefined (a warning says why when some clips had latents).
#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "data/shard/shard_reader.h"

namespace hallo::data {

struct SamplerConfig {
  uint64_t seed = 42;
  int rank = 0, world_size = 1;
  int min_ref_distance = 30;  // stage 1: |ref - target| >= this
  int n_sample_frames = 14, n_motion_frames = 2, audio_radius = 2;  // stage 2
  int height = 0, width = 0;  // 0 = as stored (all clips must agree); else resize
  std::set<std::string> exclude_ids;  // clip ids never sampled (e.g. a held-out validation clip)
  std::set<std::string> only_ids;     // non-empty: sample these clips only
};

// Where a sampler is in its stream: enough to continue it exactly after a restart.
struct SamplerPosition {
  int epoch = 0;
  size_t pos = 0;  // draws made in this epoch
};

// A clip that could not be read (checksum mismatch, HDF5 error): skipped for good.
struct BadClip {
  size_t clip = 0;      // reader index
  std::string message;  // names the shard and the clip
};

// Where each batch element came from (clip index into the reader, frame numbers).
struct SampleInfo {
  size_t clip = 0;
  int ref_frame = 0;
  std::vector<int> frames;         // stage 1: {target}; stage 2: the n_sample_frames targets
  std::vector<int> motion_frames;  // stage 2 only
};

// Per-clip conditioning both stages carry.
struct ClipConditions {
  at::Tensor face_region;     // [B,1,H,W] float 0..1
  at::Tensor face_emb;        // [B,E] float (E = 512 for ArcFace)
  at::Tensor face_emb_valid;  // [B] bool
  std::array<at::Tensor, 4> lip, face, pose;  // level l: [B,1,H/2^(3+l),W/2^(3+l)] float 0..1
};

struct Stage1Batch : ClipConditions {
  at::Tensor ref_image, target_image;  // [B,3,H,W] float in [-1,1]
  // VAE posterior of ref_frame / the target frame: [B,C,H/8,W/8] float, or undefined.
  at::Tensor ref_latent_mean, ref_latent_std, target_latent_mean, target_latent_std;
  std::vector<SampleInfo> info;
};

struct Stage2Batch : ClipConditions {
  at::Tensor ref_image;      // [B,3,H,W] in [-1,1]
  at::Tensor frames;         // [B,F,3,H,W] in [-1,1]
  at::Tensor motion_frames;  // [B,M,3,H,W] in [-1,1]
  at::Tensor audio;          // [B,F,2r+1,L,D] float: frame i's window is audio[i-r .. i+r], clamped
  // VAE posteriors (float, h = H/8, w = W/8), or undefined; see the top of this file.
  at::Tensor latent_mean, latent_std;                // [B,F,C,h,w] of `frames`
  at::Tensor motion_latent_mean, motion_latent_std;  // [B,M,C,h,w] of `motion_frames`
  at::Tensor ref_latent_mean, ref_latent_std;        // [B,C,h,w] of the reference
  std::vector<SampleInfo> info;
};

// next() is meant for one thread (it loads the batch elements in parallel itself).
class SamplerBase {
 public:
  size_t size() const { return clips_.size(); }  // clips for this rank
  void set_epoch(int epoch);
  int epoch() const { return epoch_; }
  SamplerPosition position() const { return {epoch_, pos_}; }
  void seek(const SamplerPosition& p);  // continue exactly where position() was taken
  // Clips found unreadable so far (they are never drawn again), and marking one from
  // outside (a resumed run restores the list).
  const std::vector<BadClip>& bad_clips() const { return bad_; }
  void mark_bad(size_t clip, const std::string& message);
  const std::vector<size_t>& clips() const { return clips_; }  // reader indices of this rank
  // Channels of the VAE latents the batches carry; 0 = batches carry none.
  int latent_channels() const { return latent_channels_; }

 protected:
  // `min_frames`: clips with fewer frames are skipped (one warning with the count).
  SamplerBase(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg, int min_frames,
              bool need_audio, const char* stage);
  // Next clip for the batch element, plus a generator seeded for that sample.
  struct Draw {
    size_t clip;
    uint64_t seed;
  };
  std::vector<Draw> draw(int batch_size);
  // Loads every element with load(b, draw). An element whose clip cannot be read
  // (any exception) marks that clip bad and is redrawn, so one corrupt clip costs a
  // warning, not the run. Throws when no readable clip is left.
  void load_batch(std::vector<Draw>& draws, const std::function<void(int64_t, const Draw&)>& load);

  std::shared_ptr<const ShardReader> reader_;
  SamplerConfig cfg_;
  int height_ = 0, width_ = 0;  // output size
  int emb_dim_ = 512;           // face embedding width (512 when no clip has one)
  int latent_channels_ = 0;     // > 0: every clip has latents of this many channels, no resize

 private:
  void shuffle();
  std::vector<size_t> clips_;
  std::vector<size_t> order_;
  int epoch_ = 0;
  size_t pos_ = 0;
  std::vector<BadClip> bad_;
  std::set<size_t> bad_set_;
};

class Stage1Sampler : public SamplerBase {
 public:
  Stage1Sampler(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg);
  Stage1Batch next(int batch_size);
};

class Stage2Sampler : public SamplerBase {
 public:
  Stage2Sampler(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg);
  Stage2Batch next(int batch_size);
};

}  // namespace hallo::data
