// Fuzz target: the raw-telemetry reader (dyad::ingest::Ingestor) under three specs: a state
// column with a detected delimiter, charging from the current's sign with a label column, and
// the strict mode with a scale. Whatever it accepts must write a long CSV that read_csv reads
// back as exactly the windows the report counts, each `length` steps of finite values.
#include "fuzz_util.hpp"

#include <dyad/data/csv.hpp>
#include <dyad/ingest/ingest.hpp>

#include <cstdint>
#include <exception>
#include <sstream>
#include <string>

namespace {

const char* const kSpecs[] = {
    R"({"columns": {"car": "vin", "timestamp": "time", "volt": "v", "current": "a", "soc": "soc", "mileage": "odo"},
        "charging": {"column": "state", "values": ["CHARGING", "C"]}, "charging_current": "negative",
        "interval_s": 10, "max_gap_s": 30, "length": 3, "stride": 1, "max_disorder_s": 50})",
    R"({"columns": {"car": "vin", "timestamp": "time", "current": "a", "max_temp": "temp", "label": "faulty"},
        "interval_s": 1, "max_gap_s": 5, "length": 2, "stride": 2, "delimiter": ";", "timestamp_unit": "ms"})",
    R"({"columns": {"car": "vin", "timestamp": "time", "volt": "v", "current": "a", "soc": "soc", "mileage": "odo"},
        "scale": {"soc": 100, "mileage": 0.001}, "interval_s": 10, "max_gap_s": 60, "length": 4, "stride": 3,
        "timestamp_unit": "iso8601"})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (std::size_t which = 0; which < std::size(kSpecs); ++which) {
    const dyad::ingest::Spec spec = dyad::ingest::spec_from_json(nlohmann::json::parse(kSpecs[which]));
    dyad::ingest::Options options;
    options.strict = which == 2;
    std::ostringstream out;
    dyad::ingest::Report report;
    try {
      dyad::ingest::Ingestor ingestor(spec, out, options);
      std::istringstream in(text);
      ingestor.read(in, "fuzz.csv");
      report = ingestor.finish();
    } catch (const std::exception&) {
      continue;  // rejected input
    }
    std::istringstream back(out.str());
    dyad::Dataset d;
    try {
      d = dyad::read_csv(back, "ingested.csv");
    } catch (const std::exception& e) {
      if (report.total.windows == 0) continue;  // a header without rows: read_csv wants data
      dyad::fuzz::bug(std::string("read_csv rejects what ingest wrote: ") + e.what());
    }
    if (d.size() != report.total.windows)
      dyad::fuzz::bug("ingest reported " + std::to_string(report.total.windows) + " windows and wrote " + std::to_string(d.size()));
    if (d.num_columns() != spec.signals.size()) dyad::fuzz::bug("ingest wrote other columns than the spec maps");
    for (std::size_t i = 0; i < d.size(); ++i) {
      if (d.length(i) != static_cast<std::size_t>(spec.length)) dyad::fuzz::bug("a window of another length than the spec's");
      if (!d.values(i).allFinite()) dyad::fuzz::bug("ingest wrote a non-finite value");
    }
    const auto& t = report.total;
    if (t.not_charging + t.short_session + t.gap + t.unparsable + t.out_of_range + t.out_of_order > t.rows)
      dyad::fuzz::bug("more rows dropped than read");
  }
  return 0;
}
