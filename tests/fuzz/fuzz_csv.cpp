// Fuzz target: the long-CSV reader (dyad::read_csv from a stream), with the signals found in
// the first data row and with a fixed signal list. Whatever it accepts must hold only finite
// values and come back unchanged through write_csv + read_csv.
#include "fuzz_util.hpp"

#include <dyad/data/csv.hpp>

#include <cmath>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>

namespace {

bool same(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

void check(const dyad::Dataset& d) {
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d.length(i) == 0) dyad::fuzz::bug("read_csv returned an empty segment");
    if (!d.values(i).allFinite()) dyad::fuzz::bug("read_csv returned a non-finite signal value");
    const int label = d.meta(i).label;
    if (label != 0 && label != 1) dyad::fuzz::bug("read_csv returned label " + std::to_string(label));
  }
  // Round trip: write_csv refuses what it cannot write (e.g. a car id with '\r'); whatever it
  // writes must read back exactly.
  std::ostringstream out;
  try {
    dyad::write_csv(out, d);
  } catch (const std::invalid_argument&) {
    return;
  }
  std::istringstream in(out.str());
  dyad::Dataset back;
  try {
    back = dyad::read_csv(in, "roundtrip.csv", {d.columns()});
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("read_csv rejects what write_csv wrote: ") + e.what());
  }
  if (back.size() != d.size() || back.columns() != d.columns()) dyad::fuzz::bug("write_csv + read_csv changed the shape");
  for (std::size_t i = 0; i < d.size(); ++i) {
    const auto &a = d.meta(i), &b = back.meta(i);
    if (a.car != b.car || a.segment != b.segment || a.label != b.label || !same(a.mileage, b.mileage) ||
        !same(a.timestamp, b.timestamp))
      dyad::fuzz::bug("write_csv + read_csv changed the metadata of segment " + std::to_string(i) + " (car '" + a.car + "')");
    if (d.values(i) != back.values(i)) dyad::fuzz::bug("write_csv + read_csv changed the values of segment " + std::to_string(i));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const bool listed : {false, true}) {
    dyad::CsvOptions options;
    if (listed) options.signals = {"volt", "current", "soc"};  // the columns of the seed files
    std::istringstream in(text);
    dyad::Dataset d;
    try {
      d = dyad::read_csv(in, "fuzz.csv", options);
    } catch (const std::exception&) {
      continue;  // rejected input: the expected outcome for most mutations
    }
    if (listed && d.columns() != options.signals) dyad::fuzz::bug("read_csv ignored CsvOptions::signals");
    check(d);
  }
  return 0;
}
