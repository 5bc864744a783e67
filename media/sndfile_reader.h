#pragma once
// WAV / FLAC / OGG / AIFF through libsndfile: for plain sample files this is the
// direct path (no demuxer or codec set-up) and it reads exactly the stored
// samples. Internal to hallo_media: decode_audio tries it first for those
// extensions and falls back to libav (which names the problem) when libsndfile
// cannot open the file.
#include <filesystem>
#include <optional>

#include "media/audio_reader.h"

namespace hallo::media::detail {

bool sndfile_extension(const std::filesystem::path& path);
// nullopt when libsndfile does not recognise the file.
std::optional<DecodedAudio> decode_with_sndfile(const std::filesystem::path& path, const AudioDecodeOptions& opts);

}  // namespace hallo::media::detail
