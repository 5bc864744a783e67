#pragma once
// Audio decoding to mono float32 and WAV writing.
#include <filesystem>
#include <vector>

namespace hallo::media {

struct AudioDecodeOptions {
  int sample_rate = 16000;            // <= 0 keeps the source rate
  double start_s = 0, duration_s = -1;
};

// Any container/codec libav reads (incl. the audio track of an mp4) -> mono float32 in [-1,1]
// at sample_rate, downmixed (mean of the channels) and resampled with libswresample.
// Throws hallo::Error naming the file: missing, not media, "no audio stream", corrupt.
std::vector<float> read_audio(const std::filesystem::path& path, const AudioDecodeOptions& opts = {});

struct DecodedAudio {
  std::vector<float> samples;         // mono
  int sample_rate = 0;
};
// As read_audio, also reporting the rate (useful with opts.sample_rate <= 0).
DecodedAudio decode_audio(const std::filesystem::path& path, const AudioDecodeOptions& opts = {});

// 16-bit PCM WAV via libsndfile, atomically (temp + rename). Samples outside
// [-1, 1] are clipped.
void write_wav(const std::filesystem::path& path, const std::vector<float>& mono, int sample_rate);
// Same for `channels` interleaved channels.
void write_wav_interleaved(const std::filesystem::path& path, const std::vector<float>& interleaved,
                           int channels, int sample_rate);

}  // namespace hallo::media
