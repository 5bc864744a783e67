#include "media/sndfile_reader.h"

#include <sndfile.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <memory>
#include <string>

#include "core/error.h"
#include "media/resample.h"

namespace hallo::media::detail {

bool sndfile_extension(const std::filesystem::path& path) {
  std::string e = path.extension().string();
  for (auto& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e == ".wav" || e == ".flac" || e == ".ogg" || e == ".aif" || e == ".aiff";
}

std::optional<DecodedAudio> decode_with_sndfile(const std::filesystem::path& path, const AudioDecodeOptions& opts) {
  SF_INFO info{};
  std::unique_ptr<SNDFILE, int (*)(SNDFILE*)> f(sf_open(path.c_str(), SFM_READ, &info), &sf_close);
  if (!f || info.channels <= 0 || info.samplerate <= 0) return std::nullopt;
  const int ch = info.channels;
  // Seek in the source rate, read what the requested span needs, downmix by the mean (librosa-style).
  const sf_count_t start = std::llround(std::max(0.0, opts.start_s) * info.samplerate);
  sf_count_t count = info.frames - std::min<sf_count_t>(start, info.frames);
  if (opts.duration_s >= 0) count = std::min<sf_count_t>(count, std::llround(opts.duration_s * info.samplerate));
  if (start > 0 && sf_seek(f.get(), start, SEEK_SET) < 0) return std::nullopt;
  std::vector<float> inter(static_cast<size_t>(count) * ch);
  const sf_count_t got = sf_readf_float(f.get(), inter.data(), count);
  if (got < count && sf_error(f.get()) != SF_ERR_NO_ERROR)
    fail_at(path.string(), "corrupt audio samples: {}", sf_strerror(f.get()));
  DecodedAudio out;
  out.samples.resize(static_cast<size_t>(got));
  for (sf_count_t i = 0; i < got; ++i) {
    float acc = 0;
    for (int c = 0; c < ch; ++c) acc += inter[static_cast<size_t>(i) * ch + c];
    out.samples[static_cast<size_t>(i)] = acc / ch;
  }
  out.sample_rate = info.samplerate;
  if (opts.sample_rate > 0 && opts.sample_rate != info.samplerate) {
    out.samples = resample(out.samples, info.samplerate, opts.sample_rate);
    out.sample_rate = opts.sample_rate;
  }
  return out;
}

}  // namespace hallo::media::detail
