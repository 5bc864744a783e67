// libFuzzer target: safetensors header parsing (model/io/safetensors.cpp).
//
// Every input is handed to parse_safetensors as if it were a whole file. When
// it parses, each entry becomes a TensorRecord pointing into the input and is
// copied out with copy_contiguous (so a parser that accepts out-of-range
// offsets shows up as an ASan report), and the header is re-serialised with
// safetensors_header_json and parsed again (an accepted file must round-trip).
//
// Parse errors are hallo::Error and are expected; any crash, sanitizer report,
// leak or broken invariant (abort) is a bug.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/io/blob.h"
#include "model/io/safetensors.h"
#include "model/io/tensor_record.h"

namespace {

using namespace hallo::io;

[[noreturn]] void invariant_failed(const char* what) {
  std::fprintf(stderr, "fuzz_safetensors: invariant violated: %s\n", what);
  std::abort();
}

void run(const uint8_t* data, size_t size) {
  // A private copy: parse_safetensors only gets the exact input bytes, so any
  // read past `size` hits the ASan redzone of this heap buffer.
  std::vector<uint8_t> bytes(data, data + size);
  const SafetensorsHeader hdr = parse_safetensors(bytes.data(), bytes.size(), "fuzz.safetensors");

  if (hdr.data_start < 8 || hdr.data_start > size) invariant_failed("data_start outside the file");
  auto blob = owned_blob(std::move(bytes));

  std::vector<TensorRecord> records;
  records.reserve(hdr.entries.size());
  std::vector<uint8_t> buf;
  for (const auto& e : hdr.entries) {
    TensorRecord r;
    r.name = e.name;
    r.dtype = e.dtype;
    r.shape = e.shape;
    r.storage = blob;
    r.offset = hdr.data_start + e.begin;
    if (r.nbytes() != e.end - e.begin) invariant_failed("record size differs from data_offsets span");
    if (r.offset + r.nbytes() > blob->size()) invariant_failed("record lies outside the file");
    buf.assign(static_cast<size_t>(r.nbytes()) + 1, 0);
    copy_contiguous(r, buf.data());
    records.push_back(std::move(r));
  }

  // Round trip: the header we would write for these records must parse again.
  const std::string h = safetensors_header_json(records, hdr.metadata);
  uint64_t total = 0;
  for (const auto& r : records) total += r.nbytes();
  std::vector<uint8_t> out(8 + h.size() + static_cast<size_t>(total));
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * i));
  std::copy(h.begin(), h.end(), out.begin() + 8);
  SafetensorsHeader again;
  try {
    again = parse_safetensors(out.data(), out.size(), "fuzz.roundtrip.safetensors");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_safetensors: re-serialised header rejected: %s\n", e.what());
    invariant_failed("an accepted file does not round-trip through safetensors_header_json");
  }
  if (again.entries.size() != hdr.entries.size()) invariant_failed("round trip changed the entry count");
  if (again.metadata != hdr.metadata) invariant_failed("round trip changed the metadata");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run(data, size);
  } catch (const hallo::Error&) {
  } catch (const std::exception&) {
  }
  return 0;
}
