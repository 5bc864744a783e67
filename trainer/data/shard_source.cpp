#include "trainer/data/shard_source.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include <filesystem>

#include "core/error.h"
#include "data/dataset/sample_rng.h"
#include "data/shard/shard_reader.h"

namespace hallo::trainer {

namespace fs = std::filesystem;

struct ShardSource::Dir {
  std::string path;
  std::shared_ptr<const data::ShardReader> reader;
  std::unique_ptr<data::Stage1Sampler> s1;
  std::unique_ptr<data::Stage2Sampler> s2;
  data::SamplerBase& base() { return s1 ? static_cast<data::SamplerBase&>(*s1) : *s2; }
  const data::SamplerBase& base() const { return s1 ? static_cast<const data::SamplerBase&>(*s1) : *s2; }
};

ShardSourceOptions shard_source_options(const TrainConfig& c, int rank, int world_size) {
  ShardSourceOptions o;
  o.dirs = c.data.shards;
  // The VAE stage trains on single frames (pixels), which is what stage 1's sampler gives.
  o.stage = c.stage == kStageVae ? 1 : c.stage;
  o.latents = c.stage == kStageVae ? "vae" : c.data.latents;
  auto& s = o.sampler;
  s.seed = c.seed;
  s.rank = rank;
  s.world_size = world_size;
  s.min_ref_distance = c.data.sample_margin;
  s.n_sample_frames = c.data.n_sample_frames;
  s.n_motion_frames = c.data.n_motion_frames;
  s.audio_radius = c.data.audio_margin;
  s.height = c.data.train_height;
  s.width = c.data.train_width;
  return o;
}

ShardSource::ShardSource(ShardSourceOptions o) : o_(std::move(o)) {
  if (o_.dirs.empty()) fail("training config: data.shards lists no shard directory (hallo prepare --out DIR)");
  for (const auto& path : o_.dirs) {
    if (!fs::is_directory(path)) fail_at(path, "no such shard directory (data.shards)");
    auto d = std::make_unique<Dir>();
    d->path = path;
    d->reader = std::make_shared<data::ShardReader>(path);
    if (d->reader->size() == 0) fail_at(path, "the shard directory holds no clips");
    if (o_.stage == 1) d->s1 = std::make_unique<data::Stage1Sampler>(d->reader, o_.sampler);
    else d->s2 = std::make_unique<data::Stage2Sampler>(d->reader, o_.sampler);
    dirs_.push_back(std::move(d));
  }
  // One layout for every directory: frame size, audio features, face embedding width.
  const auto& first = dirs_.front()->reader->index().clips().front();
  shape_.height = o_.sampler.height > 0 ? o_.sampler.height : first.height;
  shape_.width = o_.sampler.width > 0 ? o_.sampler.width : first.width;
  shape_.audio_extractor = first.audio_extractor;
  shape_.audio_layers = first.audio_layers;
  shape_.audio_dim = first.audio_dim;
  shape_.face_emb_dim = first.face_emb_dim > 0 ? first.face_emb_dim : 512;
  int latent = dirs_.front()->base().latent_channels();
  for (const auto& d : dirs_) {
    const auto& c = d->reader->index().clips().front();
    if (c.audio_extractor != shape_.audio_extractor || c.audio_layers != shape_.audio_layers ||
        c.audio_dim != shape_.audio_dim)
      fail_at(d->path, "audio features '{}' [{}x{}] differ from '{}' [{}x{}] in {}; prepare every directory with "
                       "one audio extractor",
              c.audio_extractor, c.audio_layers, c.audio_dim, shape_.audio_extractor, shape_.audio_layers,
              shape_.audio_dim, dirs_.front()->path);
    if (d->base().latent_channels() != latent) latent = 0;
  }
  if (o_.latents == "shards" && latent == 0)
    fail_at(dirs_.front()->path, "data.latents is 'shards' but the clips carry no usable VAE latents (hallo prepare --vae, "
                                 "stored at the training size)");
  use_latents_ = o_.latents != "vae" && latent > 0;
  shape_.latent_channels = use_latents_ ? latent : 0;

  if (!o_.heldout_id.empty()) {
    heldout_ = std::make_unique<Dir>();
    heldout_->path = o_.heldout_dir;
    heldout_->reader = std::make_shared<data::ShardReader>(o_.heldout_dir);
    data::SamplerConfig hc = o_.sampler;
    hc.seed ^= 0x686f6c646f7574ull;  // its own stream
    hc.rank = 0;
    hc.world_size = 1;
    hc.exclude_ids.clear();
    hc.only_ids = {o_.heldout_id};
    if (o_.stage == 1) heldout_->s1 = std::make_unique<data::Stage1Sampler>(heldout_->reader, hc);
    else heldout_->s2 = std::make_unique<data::Stage2Sampler>(heldout_->reader, hc);
    if (use_latents_ && heldout_->base().latent_channels() != latent)
      fail_at(o_.heldout_dir, "the held-out clip '{}' carries no VAE latents like the training clips", o_.heldout_id);
  }
}

std::optional<TrainBatch> ShardSource::heldout_batch(int batch_size) {
  if (!heldout_) return std::nullopt;
  if (!heldout_cache_) heldout_cache_ = next_from(*heldout_, batch_size);
  return heldout_cache_;
}

ShardSource::~ShardSource() = default;

size_t ShardSource::size() const {
  size_t n = 0;
  for (const auto& d : dirs_) n += d->base().size();
  return n;
}

size_t ShardSource::total_clips() const {
  size_t n = 0;
  for (const auto& d : dirs_) n += d->reader->size();
  return n;
}

std::string ShardSource::describe() const {
  std::string dirs;
  for (const auto& d : dirs_) dirs += (dirs.empty() ? "" : ", ") + d->path;
  return fmt::format("{} clips ({} for this rank) in {}; {}x{} frames; audio '{}' [{}x{}]; latents: {}", total_clips(),
                     size(), dirs, shape_.width, shape_.height, shape_.audio_extractor, shape_.audio_layers,
                     shape_.audio_dim, use_latents_ ? "stored posteriors" : "VAE on the fly");
}

TrainBatch ShardSource::next(int batch_size) {
  size_t pick = 0;
  if (dirs_.size() > 1) {
    // Directory of this batch: proportional to its clips, from (seed, rank, batch number).
    data::SampleRng rng(data::mix_seed(data::mix_seed(o_.sampler.seed ^ 0x6469727300ull, o_.sampler.rank), batches_));
    uint64_t r = rng.below(size());
    while (r >= dirs_[pick]->base().size()) r -= dirs_[pick++]->base().size();
  }
  ++batches_;
  return next_from(*dirs_[pick], batch_size);
}

TrainBatch ShardSource::next_from(Dir& d, int batch_size) {
  TrainBatch b;
  auto source_names = [&](const std::vector<data::SampleInfo>& info) {
    for (const auto& i : info)
      b.sources.push_back(d.path + ":" + d.reader->index().clips()[i.clip].clip_id);
  };
  const data::ClipConditions* cond = nullptr;
  if (d.s1) {
    data::Stage1Batch s = d.s1->next(batch_size);
    b.target_pixels = s.target_image.unsqueeze(1);  // [B, 1, 3, H, W]
    b.ref_pixels = s.ref_image.unsqueeze(1);
    if (use_latents_) {
      b.target_mean = s.target_latent_mean.unsqueeze(1);
      b.target_std = s.target_latent_std.unsqueeze(1);
      b.ref_mean = s.ref_latent_mean.unsqueeze(1);
      b.ref_std = s.ref_latent_std.unsqueeze(1);
    }
    source_names(s.info);
    b.face_region = s.face_region.expand({-1, 3, -1, -1});  // upstream's mask is an RGB image
    b.face_emb = s.face_emb;
    return b;
  }
  data::Stage2Batch s = d.s2->next(batch_size);
  const int64_t B = s.frames.size(0), F = s.frames.size(1);
  b.target_pixels = s.frames;                                             // [B, F, 3, H, W]
  b.ref_pixels = at::cat({s.ref_image.unsqueeze(1), s.motion_frames}, 1);  // [B, 1+M, 3, H, W]
  if (use_latents_) {
    b.target_mean = s.latent_mean;
    b.target_std = s.latent_std;
    b.ref_mean = at::cat({s.ref_latent_mean.unsqueeze(1), s.motion_latent_mean}, 1);
    b.ref_std = at::cat({s.ref_latent_std.unsqueeze(1), s.motion_latent_std}, 1);
  }
  for (int l = 0; l < kMaskLevels; ++l) {
    // One mask per clip, the same for every frame: [B, 1, h, w] -> [B, F, 1, h, w].
    auto per_frame = [&](const at::Tensor& m) { return m.unsqueeze(1).expand({B, F, 1, m.size(2), m.size(3)}); };
    b.full_mask[l] = per_frame(s.pose[l]);
    b.face_mask[l] = per_frame(s.face[l]);
    b.lip_mask[l] = per_frame(s.lip[l]);
  }
  b.audio = s.audio;
  source_names(s.info);
  b.face_region = s.face_region.expand({-1, 3, -1, -1});
  b.face_emb = s.face_emb;
  (void)cond;
  return b;
}

nlohmann::json ShardSource::position() const {
  nlohmann::json dirs = nlohmann::json::array();
  for (const auto& d : dirs_) {
    const auto p = d->base().position();
    nlohmann::json bad = nlohmann::json::array();
    for (const auto& c : d->base().bad_clips()) bad.push_back({{"clip", c.clip}, {"message", c.message}});
    dirs.push_back({{"dir", d->path}, {"epoch", p.epoch}, {"pos", p.pos}, {"bad", bad}});
  }
  return {{"batches", batches_}, {"dirs", dirs}};
}

void ShardSource::seek(const nlohmann::json& p) {
  const auto& dirs = p.at("dirs");
  if (dirs.size() != dirs_.size())
    fail("resume: the checkpoint sampled {} shard directories, the config lists {}", dirs.size(), dirs_.size());
  batches_ = p.at("batches").get<uint64_t>();
  for (size_t i = 0; i < dirs_.size(); ++i) {
    const auto& j = dirs[i];
    auto& s = dirs_[i]->base();
    s.seek({j.at("epoch").get<int>(), j.at("pos").get<size_t>()});
    for (const auto& b : j.at("bad")) s.mark_bad(b.at("clip").get<size_t>(), b.at("message").get<std::string>());
  }
}

nlohmann::json ShardSource::remap_position(const nlohmann::json& p, int from_world, int to_world) const {
  // Each rank samples its own 1/world of the clips; `pos` counts samples drawn from
  // that part this epoch. The same global count on `to_world` ranks: pos * from / to.
  nlohmann::json out = p;
  for (size_t i = 0; i < out.at("dirs").size() && i < dirs_.size(); ++i) {
    auto& j = out["dirs"][i];
    const auto pos = j.at("pos").get<size_t>() * static_cast<size_t>(from_world) / static_cast<size_t>(to_world);
    j["pos"] = std::min(pos, dirs_[i]->base().size());
  }
  return out;
}

std::vector<std::string> ShardSource::bad_clips() const {
  std::vector<std::string> out;
  for (const auto& d : dirs_)
    for (const auto& c : d->base().bad_clips()) out.push_back(c.message);
  return out;
}

}  // namespace hallo::trainer
