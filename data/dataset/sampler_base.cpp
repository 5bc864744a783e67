#include <spdlog/spdlog.h>

#include <map>
#include <numeric>
#include <tuple>

#include "core/error.h"
#include "data/dataset/batch_fill.h"
#include "data/dataset/latent_probe.h"
#include "data/dataset/sample_rng.h"
#include "data/dataset/samplers.h"

namespace hallo::data {

namespace {

void check_config(const SamplerConfig& c, const std::string& where) {
  if (c.world_size < 1 || c.rank < 0 || c.rank >= c.world_size)
    fail_at(where, "rank {} is not in [0, world_size={})", c.rank, c.world_size);
  if (c.min_ref_distance < 0) fail_at(where, "min_ref_distance must be >= 0");
  if (c.n_sample_frames < 1 || c.n_motion_frames < 0 || c.audio_radius < 0)
    fail_at(where, "n_sample_frames must be >= 1, n_motion_frames and audio_radius >= 0");
  if ((c.height == 0) != (c.width == 0) || c.height < 0 || c.width < 0)
    fail_at(where, "height and width must both be 0 (as stored) or both positive");
  if (c.height > 0 && (c.height < 64 || c.width < 64))
    fail_at(where, "output size {}x{} is too small for the 1/64 mask level", c.width, c.height);
}

// Channels of the latents every batch can carry, or 0 (with a warning saying why
// when some clips had latents): they must be on every clip, agree in channels,
// and match the output size (resized pixels would no longer match them).
int usable_latent_channels(const ShardReader& reader, int height, int width, const char* stage) {
  const auto& clips = reader.index().clips();
  const std::vector<int> channels = stored_latent_channels(reader);
  const std::string where = reader.dir().string();
  size_t with = 0;
  for (int c : channels) with += c > 0;
  if (with == 0) return 0;
  if (with < clips.size()) {
    spdlog::warn("{}: only {} of {} clips have VAE latents; {} batches leave latents out", where,
                 with, clips.size(), stage);
    return 0;
  }
  for (size_t i = 0; i < clips.size(); ++i) {
    if (channels[i] != channels.front()) {
      spdlog::warn("{}: clips have VAE latents of {} and {} channels ('{}'); {} batches leave latents out",
                   where, channels.front(), channels[i], clips[i].clip_id, stage);
      return 0;
    }
    if (clips[i].height != height || clips[i].width != width) {
      spdlog::warn("{}: {} batches leave VAE latents out: clip '{}' is stored at {}x{} and resized to "
                   "{}x{}, so its latents no longer match the pixels",
                   where, stage, clips[i].clip_id, clips[i].width, clips[i].height, width, height);
      return 0;
    }
  }
  return channels.front();
}

}  // namespace

SamplerBase::SamplerBase(std::shared_ptr<const ShardReader> reader, SamplerConfig cfg,
                         int min_frames, bool need_audio, const char* stage)
    : reader_(std::move(reader)), cfg_(cfg) {
  if (!reader_) fail("{} sampler: no shard reader", stage);
  const std::string where = reader_->dir().string();
  check_config(cfg_, where);
  const auto& clips = reader_->index().clips();
  if (clips.empty()) fail_at(where, "the dataset has no clips");

  // A dataset is refused as a whole when its clips cannot share one batch layout.
  std::map<std::tuple<std::string, int, int>, size_t> audio_kinds;
  int emb_dim = 0;
  for (const auto& c : clips) {
    audio_kinds[{c.audio_extractor, c.audio_layers, c.audio_dim}]++;
    if (!c.has_masks)
      fail_at(where, "clip '{}' ({}) has no face region / lip, face and pose masks", c.clip_id,
              c.shard);
    if (c.face_emb_dim != 0) {
      if (emb_dim != 0 && c.face_emb_dim != emb_dim)
        fail_at(where, "clips have face embeddings of sizes {} and {} (clip '{}')", emb_dim,
                c.face_emb_dim, c.clip_id);
      emb_dim = c.face_emb_dim;
    }
  }
  if (audio_kinds.size() > 1) {
    std::string kinds;
    for (const auto& [k, n] : audio_kinds)
      kinds += fmt::format("{}'{}' [{}x{}] ({} clips)", kinds.empty() ? "" : ", ", std::get<0>(k),
                           std::get<1>(k), std::get<2>(k), n);
    fail_at(where, "the dataset mixes audio features: {}; re-prepare it with one extractor", kinds);
  }
  if (need_audio && std::get<2>(audio_kinds.begin()->first) == 0)
    fail_at(where, "{} needs audio features but the clips have none", stage);
  if (emb_dim != 0) emb_dim_ = emb_dim;
  if (cfg_.height > 0) {
    height_ = cfg_.height;
    width_ = cfg_.width;
  } else {
    height_ = clips.front().height;
    width_ = clips.front().width;
    for (const auto& c : clips)
      if (c.height != height_ || c.width != width_)
        fail_at(where,
                "clips have different sizes ({}x{} and {}x{} in '{}'); set the sampler's "
                "height/width to resize",
                width_, height_, c.width, c.height, c.clip_id);
    if (height_ < 64 || width_ < 64)
      fail_at(where, "stored size {}x{} is too small for the 1/64 mask level", width_, height_);
  }
  latent_channels_ = usable_latent_channels(*reader_, height_, width_, stage);

  std::vector<size_t> eligible;
  size_t excluded = 0;
  for (size_t i = 0; i < clips.size(); ++i) {
    if (cfg_.exclude_ids.count(clips[i].clip_id) ||
        (!cfg_.only_ids.empty() && !cfg_.only_ids.count(clips[i].clip_id))) {
      ++excluded;
      continue;
    }
    if (clips[i].num_frames >= min_frames) eligible.push_back(i);
  }
  if (eligible.size() + excluded < clips.size())
    spdlog::warn("{}: {} skips {} of {} clips shorter than {} frames", where, stage,
                 clips.size() - eligible.size() - excluded, clips.size(), min_frames);
  const size_t per_rank = eligible.size() / static_cast<size_t>(cfg_.world_size);
  if (per_rank == 0)
    fail_at(where, "{}: {} usable clips cannot feed {} ranks", stage, eligible.size(),
            cfg_.world_size);
  const auto first = eligible.begin() + static_cast<std::ptrdiff_t>(per_rank * cfg_.rank);
  clips_.assign(first, first + static_cast<std::ptrdiff_t>(per_rank));
  shuffle();
}

void SamplerBase::set_epoch(int epoch) {
  epoch_ = epoch;
  pos_ = 0;
  shuffle();
}

void SamplerBase::shuffle() {
  order_.resize(clips_.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  SampleRng rng(mix_seed(mix_seed(mix_seed(cfg_.seed, 0x5348554646ull), static_cast<uint64_t>(cfg_.rank)),
                         static_cast<uint64_t>(epoch_)));
  for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng.below(i)]);
}

void SamplerBase::seek(const SamplerPosition& p) {
  set_epoch(p.epoch);
  if (p.pos > order_.size())
    fail_at(reader_->dir().string(), "sampler position {} is past the {} clips of epoch {} (was the dataset changed?)",
            p.pos, order_.size(), p.epoch);
  pos_ = p.pos;
}

void SamplerBase::mark_bad(size_t clip, const std::string& message) {
  if (!bad_set_.insert(clip).second) return;
  bad_.push_back({clip, message});
  if (bad_set_.size() >= clips_.size()) fail_at(reader_->dir().string(), "no readable clip is left: {}", message);
}

std::vector<SamplerBase::Draw> SamplerBase::draw(int batch_size) {
  if (batch_size < 1) fail("sampler: batch size must be positive (got {})", batch_size);
  std::vector<Draw> out;
  while (static_cast<int>(out.size()) < batch_size) {
    if (pos_ == order_.size()) set_epoch(epoch_ + 1);  // next epoch starts seamlessly
    const uint64_t seed = mix_seed(mix_seed(mix_seed(cfg_.seed, static_cast<uint64_t>(cfg_.rank)),
                                            static_cast<uint64_t>(epoch_)),
                                   pos_);
    const size_t clip = clips_[order_[pos_]];
    ++pos_;
    if (bad_set_.count(clip)) continue;  // known unreadable: its slot is skipped
    out.push_back({clip, seed});
  }
  return out;
}

void SamplerBase::load_batch(std::vector<Draw>& draws, const std::function<void(int64_t, const Draw&)>& load) {
  const int64_t n = static_cast<int64_t>(draws.size());
  std::vector<std::string> errors(draws.size());
  for_each_sample(n, [&](int64_t b) {
    try {
      load(b, draws[static_cast<size_t>(b)]);
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(b)] = e.what();
    }
  });
  // Failed elements, in order: mark the clip bad, draw a replacement, load it here.
  for (int64_t b = 0; b < n; ++b) {
    auto& err = errors[static_cast<size_t>(b)];
    while (!err.empty()) {
      mark_bad(draws[static_cast<size_t>(b)].clip, err);
      spdlog::warn("skipping unreadable clip: {}", err);
      err.clear();
      draws[static_cast<size_t>(b)] = draw(1).front();
      try {
        load(b, draws[static_cast<size_t>(b)]);
      } catch (const std::exception& e) {
        err = e.what();
      }
    }
  }
}

}  // namespace hallo::data
