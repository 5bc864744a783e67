// Weight loading: hallo's mmap zero-copy safetensors/torch-zip readers versus a
// baseline that reads the whole file into memory first (what a naive loader or
// libtorch's PyTorchStreamReader::getRecord does), measured in the same run.
// Prints ratio = baseline_time / hallo_time per format in the counters.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/runtime.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/io/weights.h"

namespace fs = std::filesystem;
using namespace hallo::io;

namespace {

// ~256 MiB of F32 in 64 tensors: the size class of an SD1.5 UNet shard.
const fs::path& fixture() {
  static fs::path p = [] {
    fs::path f = fs::temp_directory_path() / "hallo_bench_weights.safetensors";
    if (!fs::exists(f)) {
      std::vector<TensorRecord> recs;
      for (int i = 0; i < 64; ++i)
        recs.push_back(from_tensor("layer." + std::to_string(i) + ".weight", at::randn({1024, 1024})));
      write_safetensors(f, recs);
    }
    return f;
  }();
  return p;
}

// Touch every element so lazily mapped pages are really read.
double checksum(const at::Tensor& t) { return t.sum().item<double>(); }

void BM_SafetensorsMmap(benchmark::State& st) {
  const auto& f = fixture();
  for (auto _ : st) {
    StateDict sd = StateDict::open(f);
    double s = 0;
    for (const auto& k : sd.keys()) s += checksum(sd.tensor(k));
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fs::file_size(f)));
}

void BM_BaselineReadAll(benchmark::State& st) {
  const auto& f = fixture();
  for (auto _ : st) {
    std::ifstream in(f, std::ios::binary);
    std::vector<char> buf(fs::file_size(f));
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    auto blob = owned_blob(std::vector<uint8_t>(buf.begin(), buf.end()));
    auto hdr = parse_safetensors(blob->data(), blob->size(), f.string());
    double s = 0;
    for (const auto& e : hdr.entries) {
      auto t = at::empty(e.shape, at::kFloat);
      std::memcpy(t.data_ptr(), blob->data() + hdr.data_start + e.begin, e.end - e.begin);
      s += checksum(t);
    }
    benchmark::DoNotOptimize(s);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * fs::file_size(f)));
}

}  // namespace

BENCHMARK(BM_BaselineReadAll)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SafetensorsMmap)->Unit(benchmark::kMillisecond);

// Console output plus a closing "ratio" line: baseline time / hallo time.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration || r.aggregate_name == "median") times_[r.benchmark_name()] = r.GetAdjustedRealTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    double base = 0, ours = 0;
    for (const auto& [k, v] : times_) {
      if (k.rfind("BM_BaselineReadAll", 0) == 0) base = v;
      if (k.rfind("BM_SafetensorsMmap", 0) == 0) ours = v;
    }
    if (base > 0 && ours > 0) std::printf("ratio safetensors_load: baseline/hallo = %.2fx\n", base / ours);
  }

 private:
  std::map<std::string, double> times_;
};

int main(int argc, char** argv) {
  hallo::configure_runtime();
  benchmark::Initialize(&argc, argv);
  RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  return 0;
}
