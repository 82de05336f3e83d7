// Fuzz target: the raw-telemetry reader (dyad::ingest::Ingestor) under three specs: a state
// column with a detected delimiter, charging from the current's sign with a label column, and
// the strict mode with a scale. Whatever it accepts must write a long CSV that read_csv reads
// back as exactly the windows the report counts, each `length` steps of finite values.
#include "ingest_checks.hpp"

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
    dyad::fuzz::check_ingested(spec, report, out.str());
  }
  return 0;
}
