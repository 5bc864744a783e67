#include "media_test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <random>

#include "media/video_writer.h"

namespace hallo::media::test {

std::vector<uint8_t> pattern_frame(int k, int width, int height) {
  std::vector<uint8_t> rgb(static_cast<size_t>(width) * height * 3);
  const int strip = height / 4;  // bottom quarter: red
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
      if (y >= height - strip) {
        p[0] = 200, p[1] = 30, p[2] = 30;
        continue;
      }
      const int bit = x * kPatternBits / width;
      const uint8_t v = ((k >> bit) & 1) ? 230 : 25;
      p[0] = p[1] = p[2] = v;
    }
  }
  return rgb;
}

std::vector<double> mean_rgb(const std::vector<uint8_t>& rgb, int width, int x0, int y0, int x1,
                             int y1) {
  std::vector<double> m(3, 0.0);
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x, ++n)
      for (int c = 0; c < 3; ++c) m[c] += rgb[(static_cast<size_t>(y) * width + x) * 3 + c];
  for (auto& v : m) v /= std::max(n, 1);
  return m;
}

int decode_pattern(const std::vector<uint8_t>& rgb, int width, int height) {
  const int rows = height - height / 4;
  int k = 0;
  for (int b = 0; b < kPatternBits; ++b) {
    // Sample the middle half of each bar, away from blurred edges.
    const int bar_w = width / kPatternBits;
    const int x0 = b * bar_w + bar_w / 4, x1 = (b + 1) * bar_w - bar_w / 4;
    const auto m = mean_rgb(rgb, width, x0, rows / 4, x1, rows * 3 / 4);
    if ((m[0] + m[1] + m[2]) / 3 > 128) k |= 1 << b;
  }
  return k;
}

std::vector<float> sine(double freq, double amplitude, int sample_rate, double seconds) {
  std::vector<float> x(static_cast<size_t>(std::llround(seconds * sample_rate)));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(amplitude * std::sin(2 * M_PI * freq * static_cast<double>(i) / sample_rate));
  return x;
}

double rms(const std::vector<float>& x, size_t begin, size_t end) {
  end = std::min(end, x.size());
  double s = 0;
  for (size_t i = begin; i < end; ++i) s += static_cast<double>(x[i]) * x[i];
  return end > begin ? std::sqrt(s / static_cast<double>(end - begin)) : 0.0;
}

double zero_crossing_freq(const std::vector<float>& x, int sample_rate, size_t begin, size_t end) {
  end = std::min(end, x.size());
  double first = -1, last = -1;
  int crossings = 0;
  for (size_t i = begin + 1; i < end; ++i) {
    if (x[i - 1] < 0 && x[i] >= 0) {
      const double t = static_cast<double>(i - 1) + x[i - 1] / (x[i - 1] - x[i]);
      if (first < 0) first = t;
      last = t;
      ++crossings;
    }
  }
  if (crossings < 2) return 0;
  return (crossings - 1) / ((last - first) / sample_rate);
}

int run_command(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  std::string s;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) s.append(buf.data(), n);
  const int status = ::pclose(p);
  if (out) *out = std::move(s);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_program(const std::string& name) {
  return run_command("command -v " + name + " >/dev/null 2>&1") == 0;
}

void write_pattern_video(const fs::path& path, int frames, double fps, int width, int height,
                         bool with_audio, const std::string& preset) {
  EncodeOptions opts;
  opts.fps = fps;
  opts.preset = preset;
  VideoWriter w(path, width, height, opts);
  for (int k = 0; k < frames; ++k) w.write_rgb(pattern_frame(k, width, height).data());
  if (with_audio) w.set_audio(sine(440.0, 0.5, 44100, frames / fps), 44100);
  w.close();
}

}  // namespace hallo::media::test
