// What an accepted ingest must have written, shared by the ingest and spec fuzz targets: the
// long CSV reads back as exactly the windows the report counts, each `length` steps of finite
// values in the spec's columns, and no more rows dropped than read.
#pragma once

#include "fuzz_util.hpp"

#include <dyad/data/csv.hpp>
#include <dyad/ingest/ingest.hpp>

#include <exception>
#include <sstream>
#include <string>

namespace dyad::fuzz {

inline void check_ingested(const ingest::Spec& spec, const ingest::Report& report, const std::string& written) {
  std::istringstream back(written);
  Dataset d;
  try {
    d = read_csv(back, "ingested.csv");
  } catch (const std::exception& e) {
    if (report.total.windows == 0) return;  // a header without rows: read_csv wants data
    bug(std::string("read_csv rejects what ingest wrote: ") + e.what());
  }
  if (d.size() != report.total.windows)
    bug("ingest reported " + std::to_string(report.total.windows) + " windows and wrote " + std::to_string(d.size()));
  if (d.num_columns() != spec.signals.size()) bug("ingest wrote other columns than the spec maps");
  for (std::size_t i = 0; i < d.size(); ++i) {
    if (d.length(i) != static_cast<std::size_t>(spec.length)) bug("a window of another length than the spec's");
    if (!d.values(i).allFinite()) bug("ingest wrote a non-finite value");
  }
  const auto& t = report.total;
  if (t.not_charging + t.short_session + t.gap + t.unparsable + t.out_of_range + t.out_of_order > t.rows)
    bug("more rows dropped than read");
}

}  // namespace dyad::fuzz
