// Fuzz target: the ingest spec (dyad::ingest::spec_from_file, as `dyad ingest --spec` reads
// it; it takes a path: the bytes go to an in-memory file). A spec it accepts runs the Ingestor
// on two small fixed raw exports in the simulator's column names (commas, ISO-8601 times and a
// state column with a label map; semicolons and epoch milliseconds), lenient and strict. As
// in the `ingest` target, whatever comes out must be a long CSV that read_csv reads back as
// exactly the windows the report counts, each `length` steps of finite values, over the
// signals the spec maps, and no more rows dropped than read; the report must serialise.
#include "ingest_checks.hpp"

#include <dyad/data/csv.hpp>
#include <dyad/ingest/ingest.hpp>
#include <dyad/ingest/spec.hpp>

#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace {

// Two cars charging (state CHARGING, current negative) with a gap, an empty cell, an
// implausible SOC, a row out of order and a driving stretch; `fault` and `aux` are columns a
// spec may map as the label and an extra signal.
constexpr const char* kCommaIso =
    "vin,time,pack_voltage,pack_current,soc_pct,cell_v_max,cell_v_min,temp_max,temp_min,odometer_km,state,fault,aux\n"
    "A,2021-01-01T00:00:00Z,350.0,-20.0,40.0,3.70,3.60,25.0,24.0,1000.0,CHARGING,0,1\n"
    "A,2021-01-01T00:00:10Z,350.5,-20.1,40.5,3.71,3.61,25.1,24.0,1000.0,CHARGING,0,2\n"
    "B,2021-01-01T00:00:10Z,360.0,-30.0,50.0,3.80,3.70,26.0,25.0,2000.0,CHARGING,1,3\n"
    "A,2021-01-01T00:00:20Z,351.0,-20.2,41.0,3.72,3.62,25.2,24.1,1000.0,CHARGING,0,\n"
    "B,2021-01-01T00:00:20Z,360.5,-30.1,50.5,3.81,3.71,26.1,25.0,2000.0,CHARGING,1,4\n"
    "A,2021-01-01T00:00:30Z,351.5,,41.5,3.73,3.63,25.3,24.1,1000.0,CHARGING,0,5\n"
    "B,2021-01-01T00:00:30Z,361.0,-30.2,151.0,3.82,3.72,26.2,25.1,2000.0,CHARGING,1,6\n"
    "A,2021-01-01T00:00:40Z,352.0,-20.3,42.0,3.74,3.64,25.4,24.2,1000.0,CHARGING,0,7\n"
    "B,2021-01-01T00:00:40Z,361.5,-30.3,51.5,3.83,3.73,26.3,25.1,2000.0,CHARGING,1,8\n"
    "A,2021-01-01T00:00:35Z,352.1,-20.3,42.1,3.74,3.64,25.4,24.2,1000.0,CHARGING,0,9\n"
    "B,2021-01-01T00:00:50Z,362.0,-30.4,52.0,3.84,3.74,26.4,25.2,2000.0,CHARGING,1,10\n"
    "A,2021-01-01T00:00:50Z,352.5,-20.4,42.5,3.75,3.65,25.5,24.2,1000.0,CHARGING,0,11\n"
    "A,2021-01-01T00:02:00Z,353.0,-20.5,43.0,3.76,3.66,25.6,24.3,1000.0,CHARGING,0,12\n"
    "A,2021-01-01T00:02:10Z,353.5,-20.6,43.5,3.77,3.67,25.7,24.3,1000.0,CHARGING,0,13\n"
    "A,2021-01-01T00:02:20Z,354.0,-20.7,44.0,3.78,3.68,25.8,24.4,1000.0,CHARGING,0,14\n"
    "B,2021-01-01T00:01:00Z,362.5,-30.5,52.5,3.85,3.75,26.5,25.2,2000.0,CHARGING,1,15\n"
    "B,2021-01-01T00:01:10Z,340.0,15.0,52.4,3.60,3.50,26.5,25.2,2001.0,DRIVING,1,16\n"
    "B,2021-01-01T00:01:20Z,339.0,16.0,52.3,3.59,3.49,26.6,25.3,2002.0,DRIVING,1,17\n";

// The same kind of export with semicolons, epoch milliseconds and no state column: charging
// is told by the current's sign (positive here).
constexpr const char* kSemicolonMs =
    "vin;time;pack_voltage;pack_current;soc_pct;cell_v_max;cell_v_min;temp_max;temp_min;odometer_km;fault;aux\n"
    "A;1609459200000;350;20;40;3.7;3.6;25;24;1000;0;1\n"
    "A;1609459201000;350.5;20.1;40.5;3.71;3.61;25.1;24;1000;0;2\n"
    "A;1609459202000;351;20.2;41;3.72;3.62;25.2;24.1;1000;0;3\n"
    "A;1609459203000;351.5;20.3;41.5;3.73;3.63;25.3;24.1;1000;0;4\n"
    "A;1609459204000;352;-5;41.5;3.73;3.63;25.3;24.1;1001;0;5\n"
    "C;1609459200500;330;10;20;3.5;3.4;20;19;500;1;6\n"
    "C;1609459201500;330.5;10.1;20.5;3.51;3.41;20.1;19;500;1;7\n"
    "C;1609459202500;331;10.2;21;3.52;3.42;20.2;19.1;500;1;8\n"
    "C;1609459203500;NaN;10.3;21.5;3.53;3.43;20.3;19.1;500;1;9\n"
    "C;1609459204500;332;10.4;22;3.54;3.44;20.4;19.2;500;1;10\n";

void ingest_under(const dyad::ingest::Spec& spec, const char* raw, bool strict,
                  const std::optional<std::map<std::string, int>>& labels) {
  dyad::ingest::Options options;
  options.strict = strict;
  std::ostringstream out;
  dyad::ingest::Report report;
  try {
    dyad::ingest::Ingestor ingestor(spec, out, options, labels);
    std::istringstream in(raw);
    ingestor.read(in, "raw.csv");
    report = ingestor.finish();
  } catch (const std::exception&) {
    return;  // the spec does not fit the export: refused with a message
  }
  try {
    (void)report.to_json().dump(2);  // what --report-json writes
  } catch (const std::exception& e) {
    dyad::fuzz::bug(std::string("the ingest report does not serialise: ") + e.what());
  }
  dyad::fuzz::check_ingested(spec, report, out.str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const dyad::fuzz::MemFile file(data, size);
  dyad::ingest::Spec spec;
  try {
    spec = dyad::ingest::spec_from_file(file.path());
  } catch (const std::exception&) {
    return 0;  // refused with a message
  }
  if (spec.car.empty() || spec.timestamp.empty() || spec.signals.empty() || !(spec.interval_s > 0) ||
      !(spec.max_gap_s >= spec.interval_s) || spec.length < 2 || spec.stride < 1)
    dyad::fuzz::bug("spec_from_json accepted a spec without car, time or signals, or with bad sizes");
  const std::map<std::string, int> labels{{"A", 0}, {"B", 1}};
  ingest_under(spec, kCommaIso, false, labels);
  ingest_under(spec, kCommaIso, true, std::nullopt);
  ingest_under(spec, kSemicolonMs, false, std::nullopt);
  return 0;
}
