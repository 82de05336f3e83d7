// Fuzz target: segment stores (dyad::open_segment_store, which takes a path: the bytes go to
// an in-memory file, mapped as a real store is). Every store it accepts must be a dataset
// that is safe to read whole: each segment inside the values, at least one row, labels 0 or
// 1; and writing it back and reopening must give the same dataset.
#include "fuzz_util.hpp"

#include <dyad/io/segment_store.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <string>

namespace {

bool same_number(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const dyad::fuzz::MemFile file(data, size);
  dyad::Dataset d;
  try {
    d = dyad::open_segment_store(file.path());
  } catch (const std::exception&) {
    return 0;  // refused with a message: what it is for
  }
  double sum = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d.length(i) < 1) dyad::fuzz::bug("a segment of no rows");
    if (d.meta(i).label != 0 && d.meta(i).label != 1) dyad::fuzz::bug("a label other than 0 or 1");
    if (d.meta(i).car.empty()) dyad::fuzz::bug("an empty car id");
    const dyad::SegmentValues v = d.values(i);
    for (Eigen::Index k = 0; k < v.size(); ++k) sum += v.data()[k];  // every value readable
  }
  (void)sum;
  // Round trip through the writer.
  const auto copy = std::filesystem::temp_directory_path() / ("dyad_fuzz_store_" + std::to_string(::getpid()) + ".dyadset");
  dyad::write_segment_store(copy, d);
  const dyad::Dataset again = dyad::open_segment_store(copy);
  std::filesystem::remove(copy);
  if (again.size() != d.size() || again.columns() != d.columns() || again.labelled() != d.labelled())
    dyad::fuzz::bug("the store written back differs in shape");
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto &a = d.meta(i), &b = again.meta(i);
    if (a.car != b.car || a.segment != b.segment || a.label != b.label || !same_number(a.mileage, b.mileage) ||
        !same_number(a.timestamp, b.timestamp) || d.length(i) != again.length(i))
      dyad::fuzz::bug("the store written back differs in segment " + std::to_string(i));
    const auto x = d.values(i), y = again.values(i);
    for (Eigen::Index k = 0; k < x.size(); ++k)
      if (!same_number(x.data()[k], y.data()[k])) dyad::fuzz::bug("the store written back differs in values");
  }
  return 0;
}
