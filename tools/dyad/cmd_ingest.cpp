// dyad ingest: raw telematics exports -> the long CSV of charging windows (dyad/ingest/).

#include "commands.hpp"
#include "common.hpp"

#include <dyad/ingest/ingest.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>

namespace dyad::cli {

struct IngestArgs {
  std::vector<std::string> raw;
  std::string spec, labels, out, report_json;
  bool strict = false;
};

inline void add_ingest_options(CLI::App* cmd, IngestArgs& a) {
  cmd->add_option("--raw", a.raw, "Telematics export (CSV, one row per sample); repeat for more files, in time order")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--spec", a.spec, "Ingest spec (JSON): column mapping, charging rule, grid and windows")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--labels", a.labels,
                  "Labels CSV: header line, then car id,label (0 normal, 1 faulty); without it "
                  "(or a label column in the spec) the output is unlabelled")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Output long CSV of charging windows (written whole or not at all)")->required();
  cmd->add_option("--report-json", a.report_json, "Also write the account of rows, sessions, windows and drops as JSON");
  cmd->add_flag("--strict", a.strict, "Physically implausible values are errors instead of dropped rows");
}

inline void print_ingest_report(const ingest::Report& r) {
  const auto& t = r.total;
  auto pct = [&](std::uint64_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f%%", t.rows ? 100.0 * static_cast<double>(n) / static_cast<double>(t.rows) : 0.0);
    return std::string(buf);
  };
  std::cerr << "dyad ingest: " << r.files.size() << " file(s), " << t.rows << " rows, " << r.cars.size() << " cars: " << t.sessions
            << " charging sessions, " << t.windows << " windows of " << r.signals.size() << " signals"
            << (r.labelled ? "" : " (unlabelled)") << "\n";
  std::cerr << "  rows dropped: not charging " << t.not_charging << " (" << pct(t.not_charging) << "), outside a session "
            << t.short_session << ", gap " << t.gap << ", unparsable " << t.unparsable << ", out of range " << t.out_of_range
            << ", out of order " << t.out_of_order << "; cells interpolated " << t.cells_interpolated << "\n";
  for (const auto& [reason, e] : r.dropped)
    for (const auto& where : e.where) std::cerr << "  " << reason << ": " << where << "\n";
  for (const auto& [column, e] : r.implausible) {
    std::cerr << "  implausible " << column << ": " << e.count << " row(s)";
    for (const auto& where : e.where) std::cerr << (&where == &e.where.front() ? ", e.g. " : "; ") << where;
    std::cerr << "\n";
  }
  // Per car: every car of a small fleet; of a large one the 10 that lost the largest share of
  // their rows (--report-json has every car).
  std::vector<std::pair<std::string, const ingest::RowCounts*>> cars;
  for (const auto& [car, c] : r.cars) cars.emplace_back(car, &c);
  auto lost = [](const ingest::RowCounts& c) {
    const auto dropped = c.short_session + c.gap + c.unparsable + c.out_of_range + c.out_of_order;
    return c.charging_rows ? static_cast<double>(dropped) / static_cast<double>(c.charging_rows + c.out_of_range) : 1.0;
  };
  const std::size_t shown = cars.size() <= 20 ? cars.size() : 10;
  if (cars.size() > 20) {
    std::stable_sort(cars.begin(), cars.end(), [&](const auto& a, const auto& b) { return lost(*a.second) > lost(*b.second); });
    std::cerr << "  the " << shown << " of " << cars.size() << " cars that lost the largest share of their charging rows:\n";
  }
  std::cerr << "  car                  rows  sessions  windows  dropped  interpolated\n";
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& c = *cars[i].second;
    const auto dropped = c.not_charging + c.short_session + c.gap + c.unparsable + c.out_of_range + c.out_of_order;
    char line[160];
    std::snprintf(line, sizeof line, "  %-16s %8llu  %8llu  %7llu  %7llu  %12llu\n", detail::excerpt(cars[i].first, 16).c_str(),
                  static_cast<unsigned long long>(c.rows), static_cast<unsigned long long>(c.sessions),
                  static_cast<unsigned long long>(c.windows), static_cast<unsigned long long>(dropped),
                  static_cast<unsigned long long>(c.cells_interpolated));
    std::cerr << line;
  }
  for (const auto& w : r.warnings) std::cerr << "dyad ingest: warning: " << w << "\n";
}

inline int run_ingest(const IngestArgs& a) {
  const ingest::Spec spec = ingest::spec_from_file(a.spec);
  std::optional<std::map<std::string, int>> labels;
  if (!a.labels.empty()) labels = ingest::read_labels(a.labels);
  check_output_path(a.out, "--out");
  if (!a.report_json.empty()) check_output_path(a.report_json, "--report-json");
  std::vector<NamedPath> inputs{{"--spec", a.spec}, {"--labels", a.labels}};
  for (const auto& f : a.raw) inputs.push_back({"--raw", f});
  check_output_not_input(a.out, "--out", inputs);
  check_output_not_input(a.report_json, "--report-json", inputs);
  ingest::Options options;
  options.strict = a.strict;
  ingest::Report report;
  write_file_atomically(a.out, [&](std::ostream& os) {
    ingest::Ingestor ingestor(spec, os, options, labels);
    for (const auto& file : a.raw) ingestor.read(std::filesystem::path(file));
    report = ingestor.finish();
  });
  if (!a.report_json.empty())
    write_file_atomically(a.report_json, [&](std::ostream& os) { os << report.to_json().dump(2) << "\n"; });
  print_ingest_report(report);
  std::cerr << "dyad ingest: wrote " << a.out << (a.report_json.empty() ? "" : " and " + a.report_json) << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
IngestArgs ingest_args;
}  // namespace

namespace command {
void ingest_options(CLI::App* cmd) { add_ingest_options(cmd, ingest_args); }
int ingest_run() { return run_ingest(ingest_args); }
}  // namespace command

}  // namespace dyad::cli
