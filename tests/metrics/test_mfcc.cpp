// MFCC (python_speech_features defaults, what SyncNet is fed) against the documented
// definition written out as plain loops here (naive DFT, explicit triangles, explicit
// DCT-II sums), on a known int16 signal with a silent tail. The numbers of the real
// tool are checked by `hallo golden --name mfcc --check`.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "eval/mfcc.h"

namespace {

using Matrix = std::vector<std::vector<double>>;

constexpr int kRate = 16000, kLen = 400, kStep = 160, kNfft = 512, kNfilt = 26, kNcep = 13, kLifter = 22;

// 0.5 s of 440 Hz + 1250 Hz, then `silence` samples of exact zeros, rounded to int16.
std::vector<int16_t> two_sines(int tones, int silence) {
  std::vector<int16_t> s(tones + silence, 0);
  for (int i = 0; i < tones; ++i) {
    const double t = static_cast<double>(i) / kRate;
    s[i] = static_cast<int16_t>(std::lrint(8000 * std::sin(2 * M_PI * 440 * t) + 3000 * std::sin(2 * M_PI * 1250 * t)));
  }
  return s;
}

// The mel filter edges in fft bins: floor(513 * mel2hz(m) / 16000) for 28 mel points
// evenly spaced over 0..8000 Hz, as numpy computes them for the defaults.
const std::vector<int> kBins = {0,  2,  4,  7,  10, 13, 16, 20,  24,  29,  34,  40,  46,  53,
                                60, 68, 77, 87, 97, 109, 122, 136, 152, 169, 188, 209, 231, 256};

// The definition, step by step: pre-emphasis, 400-sample frames every 160 (zero-extended),
// |DFT_512|^2 / 512, triangles over kBins, zeros -> DBL_EPSILON, log, DCT-II (ortho),
// 13 coefficients, lifter 1 + 11 sin(pi n / 22), c0 = log(frame energy).
Matrix reference_mfcc(const std::vector<int16_t>& s) {
  const int n = static_cast<int>(s.size());
  std::vector<double> pre(n);
  pre[0] = s[0];
  for (int i = 1; i < n; ++i) pre[i] = s[i] - 0.97 * s[i - 1];

  int frames = 1;
  if (n > kLen) frames = 1 + (n - kLen + kStep - 1) / kStep;
  Matrix out(frames, std::vector<double>(kNcep));
  for (int t = 0; t < frames; ++t) {
    std::vector<double> x(kLen, 0.0);
    for (int j = 0; j < kLen; ++j)
      if (t * kStep + j < n) x[j] = pre[t * kStep + j];
    std::vector<double> power(kNfft / 2 + 1);
    double energy = 0;
    for (int k = 0; k <= kNfft / 2; ++k) {
      double re = 0, im = 0;
      for (int j = 0; j < kLen; ++j) {
        const double a = 2 * M_PI * static_cast<double>((static_cast<int64_t>(k) * j) % kNfft) / kNfft;
        re += x[j] * std::cos(a);
        im -= x[j] * std::sin(a);
      }
      power[k] = (re * re + im * im) / kNfft;
      energy += power[k];
    }
    std::vector<double> logfb(kNfilt);
    for (int f = 0; f < kNfilt; ++f) {
      double e = 0;
      for (int k = kBins[f]; k < kBins[f + 1]; ++k) e += power[k] * (k - kBins[f]) / double(kBins[f + 1] - kBins[f]);
      for (int k = kBins[f + 1]; k < kBins[f + 2]; ++k)
        e += power[k] * (kBins[f + 2] - k) / double(kBins[f + 2] - kBins[f + 1]);
      logfb[f] = std::log(e == 0 ? 2.220446049250313e-16 : e);
    }
    for (int c = 0; c < kNcep; ++c) {
      double sum = 0;
      for (int f = 0; f < kNfilt; ++f) sum += logfb[f] * std::cos(M_PI * c * (2 * f + 1) / (2.0 * kNfilt));
      const double scale = c == 0 ? std::sqrt(1.0 / kNfilt) : std::sqrt(2.0 / kNfilt);
      out[t][c] = scale * sum * (1 + kLifter / 2.0 * std::sin(M_PI * c / kLifter));
    }
    out[t][0] = std::log(energy == 0 ? 2.220446049250313e-16 : energy);
  }
  return out;
}

at::Tensor to_tensor(const std::vector<int16_t>& s) {
  return at::from_blob(const_cast<int16_t*>(s.data()), {static_cast<int64_t>(s.size())}, at::kShort).clone();
}

// max |got - want| / max |want| over the whole matrix.
double rel_diff(const at::Tensor& got, const Matrix& want) {
  double d = 0, ref = 0;
  auto g = got.accessor<double, 2>();
  for (size_t t = 0; t < want.size(); ++t)
    for (size_t c = 0; c < want[t].size(); ++c) {
      d = std::max(d, std::abs(g[t][c] - want[t][c]));
      ref = std::max(ref, std::abs(want[t][c]));
    }
  return d / ref;
}

}  // namespace

TEST(Mfcc, MatchesTheDefinitionOnTonesWithASilentTail) {
  const auto s = two_sines(8000, 4800);  // 0.5 s of tones + 0.3 s of zeros
  const Matrix want = reference_mfcc(s);
  const at::Tensor got = hallo::eval::mfcc(to_tensor(s));
  ASSERT_EQ(got.scalar_type(), at::kDouble);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{static_cast<int64_t>(want.size()), kNcep}));
  EXPECT_EQ(got.size(0), 1 + (12800 - 400 + 159) / 160);  // 79
  EXPECT_LE(rel_diff(got, want), 1e-9);
  // The silent frames hit the eps substitution: c0 = log(eps) and the liftered
  // cepstrum of a constant log(eps) vector is zero beyond c0.
  const auto last = got[got.size(0) - 1];
  EXPECT_NEAR(last[0].item<double>(), std::log(2.220446049250313e-16), 1e-12);
  EXPECT_NEAR(last.slice(0, 1).abs().max().item<double>(), 0.0, 1e-9);
}

TEST(Mfcc, ShortSignalsAreOneZeroExtendedFrame) {
  for (int n : {1, 250, 400}) {
    const auto s = two_sines(n, 0);
    const at::Tensor got = hallo::eval::mfcc(to_tensor(s));
    ASSERT_EQ(got.size(0), 1) << n;
    if (n > 1) {
      EXPECT_LE(rel_diff(got, reference_mfcc(s)), 1e-9) << n;
    }
  }
}

TEST(Mfcc, FrameCountIsOnePlusCeilOfTheRestOverTheStep) {
  // T = 1 + ceil((S - 400) / 160) for S > 400.
  const std::vector<std::pair<int, int64_t>> cases = {{401, 2}, {560, 2}, {561, 3}, {720, 3}, {32000, 199}};
  for (const auto& [n, frames] : cases)
    EXPECT_EQ(hallo::eval::mfcc(at::zeros({n}, at::kShort)).size(0), frames) << n;
}

TEST(Mfcc, HooksHoldTheIntermediates) {
  const auto s = two_sines(1600, 160);
  hallo::eval::MfccHooks h;
  const at::Tensor got = hallo::eval::mfcc(to_tensor(s), {}, &h);
  const int64_t t = got.size(0);
  EXPECT_EQ(h.preemphasis.sizes(), (std::vector<int64_t>{1760}));
  EXPECT_EQ(h.frames.sizes(), (std::vector<int64_t>{t, kLen}));
  EXPECT_EQ(h.powspec.sizes(), (std::vector<int64_t>{t, kNfft / 2 + 1}));
  EXPECT_EQ(h.filterbanks.sizes(), (std::vector<int64_t>{kNfilt, kNfft / 2 + 1}));
  EXPECT_EQ(h.fbank.sizes(), (std::vector<int64_t>{t, kNfilt}));
  EXPECT_EQ(h.energy.sizes(), (std::vector<int64_t>{t}));
  EXPECT_EQ(h.lifter.sizes(), (std::vector<int64_t>{t, kNcep}));
  // Each triangle peaks at 1 on its centre bin (kBins[f+1]) and spans kBins[f]..kBins[f+2].
  for (int f = 0; f < kNfilt; ++f) {
    EXPECT_DOUBLE_EQ(h.filterbanks[f][kBins[f + 1]].item<double>(), 1.0) << f;
    EXPECT_EQ(h.filterbanks[f].slice(0, kBins[f + 2]).abs().sum().item<double>(), 0.0) << f;
  }
  // Only column 0 differs between the liftered cepstrum and the output.
  EXPECT_TRUE(at::equal(h.lifter.slice(1, 1), got.slice(1, 1)));
  EXPECT_TRUE(at::allclose(got.select(1, 0), at::log(h.energy)));
}

TEST(Mfcc, SyncNetInputIsTheTransposedFloatMatrix) {
  const auto s = two_sines(3200, 0);
  const at::Tensor m = hallo::eval::mfcc(to_tensor(s));    // [T,13]
  const at::Tensor cct = hallo::eval::syncnet_mfcc(to_tensor(s));  // [1,1,13,T]
  ASSERT_EQ(cct.sizes(), (std::vector<int64_t>{1, 1, kNcep, m.size(0)}));
  EXPECT_EQ(cct.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(cct[0][0], m.t().to(at::kFloat)));
}

TEST(Mfcc, RejectsEmptyAndMultiDimensionalSignals) {
  EXPECT_THROW(hallo::eval::mfcc(at::zeros({0}, at::kShort)), hallo::Error);
  EXPECT_THROW(hallo::eval::mfcc(at::zeros({2, 400}, at::kShort)), hallo::Error);
}
