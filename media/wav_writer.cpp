// write_wav: libsndfile encodes into memory (virtual I/O), AtomicFile puts the
// bytes on disk, so a failed write never leaves a partial WAV behind.
#include <sndfile.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "core/atomic_file.h"
#include "core/error.h"
#include "media/audio_reader.h"

namespace hallo::media {

namespace {

struct MemFile {
  std::string bytes;
  sf_count_t pos = 0;
};

sf_count_t mem_length(void* user) { return static_cast<sf_count_t>(static_cast<MemFile*>(user)->bytes.size()); }

sf_count_t mem_seek(sf_count_t offset, int whence, void* user) {
  auto* f = static_cast<MemFile*>(user);
  sf_count_t base = 0;
  if (whence == SEEK_CUR) base = f->pos;
  if (whence == SEEK_END) base = static_cast<sf_count_t>(f->bytes.size());
  f->pos = std::max<sf_count_t>(0, base + offset);
  return f->pos;
}

sf_count_t mem_read(void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemFile*>(user);
  const sf_count_t avail = std::max<sf_count_t>(0, static_cast<sf_count_t>(f->bytes.size()) - f->pos);
  const sf_count_t n = std::min(count, avail);
  if (n > 0) std::memcpy(ptr, f->bytes.data() + f->pos, static_cast<size_t>(n));
  f->pos += n;
  return n;
}

sf_count_t mem_write(const void* ptr, sf_count_t count, void* user) {
  auto* f = static_cast<MemFile*>(user);
  const size_t end = static_cast<size_t>(f->pos + count);
  if (end > f->bytes.size()) f->bytes.resize(end);
  std::memcpy(f->bytes.data() + f->pos, ptr, static_cast<size_t>(count));
  f->pos += count;
  return count;
}

sf_count_t mem_tell(void* user) { return static_cast<MemFile*>(user)->pos; }

}  // namespace

void write_wav_interleaved(const std::filesystem::path& path, const std::vector<float>& interleaved,
                           int channels, int sample_rate) {
  const std::string where = path.string();
  if (sample_rate <= 0) fail_at(where, "invalid sample rate {}", sample_rate);
  if (channels <= 0) fail_at(where, "invalid channel count {}", channels);
  if (interleaved.size() % static_cast<size_t>(channels) != 0)
    fail_at(where, "{} samples do not split into {} channels", interleaved.size(), channels);

  SF_VIRTUAL_IO io{mem_length, mem_seek, mem_read, mem_write, mem_tell};
  MemFile mem;
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* sf = sf_open_virtual(&io, SFM_WRITE, &info, &mem);
  if (!sf) fail_at(where, "libsndfile cannot write WAV: {}", sf_strerror(nullptr));
  // Clip instead of wrapping around when a sample exceeds [-1, 1].
  sf_command(sf, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const sf_count_t frames = static_cast<sf_count_t>(interleaved.size() / channels);
  const sf_count_t written = sf_writef_float(sf, interleaved.data(), frames);
  std::string err = written == frames ? "" : sf_strerror(sf);
  sf_close(sf);  // finalises the RIFF header sizes
  if (!err.empty()) fail_at(where, "libsndfile write failed: {}", err);
  write_file_atomic(path, mem.bytes);
}

void write_wav(const std::filesystem::path& path, const std::vector<float>& mono, int sample_rate) {
  write_wav_interleaved(path, mono, 1, sample_rate);
}

}  // namespace hallo::media
