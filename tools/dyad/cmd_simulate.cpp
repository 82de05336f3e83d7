// dyad simulate: stream a synthetic fleet to a long CSV of charging segments (--out), or to a raw
// telematics export of every sample with its ground truth (--raw); both in constant memory.

#include "commands.hpp"
#include "common.hpp"

#include <dyad/sim/telemetry.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <streambuf>
#include <utility>

namespace dyad::cli {

struct SimulateArgs {
  sim::FleetConfig fleet;
  std::string out, faults_out;
  // --raw: the export, its options (their fleet is `fleet`) and the files that describe it.
  std::string raw, spec_out, labels_out, sessions_out;
  sim::TelemetryConfig telemetry;
  std::string current_sign = "positive", timestamps = "iso8601", delimiter = ",";
  std::vector<CLI::Option*> raw_only, segments_only;  // to refuse them in the other mode
};

inline void add_simulate_options(CLI::App* cmd, SimulateArgs& a) {
  cmd->add_option("--cars", a.fleet.cars, "Cars in the fleet")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--faulty", a.fleet.faulty, "How many of them carry a fault")->capture_default_str();
  a.segments_only.push_back(cmd->add_option("--segments", a.fleet.segments_per_car, "Charging segments per car (--out)")
                                ->capture_default_str()
                                ->check(CLI::PositiveNumber));
  cmd->add_option("--steps", a.fleet.steps, "Time steps per segment (--raw: the glitch window and the spec's length)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.fleet.seed, "Random seed (the fleet is a pure function of it)")->capture_default_str();
  cmd->add_option("--fault-onset-day", a.fleet.fault_onset_day,
                  "Every fault starts on this day of its car's history (default: drawn in the first 30 days)")
      ->check(CLI::Range(0.0, 3660.0));
  cmd->add_option("--out", a.out, "Output long CSV of charging segments");
  a.segments_only.push_back(
      cmd->add_option("--faults-out", a.faults_out,
                      "--out: also write each car's fault: car,label,fault,magnitude,onset_days,growth_days,cell,channel"));

  sim::TelemetryConfig& t = a.telemetry;
  auto raw_only = [&](CLI::Option* o) { a.raw_only.push_back(o); };
  cmd->add_option("--raw", a.raw, "Instead of --out: a raw telematics export, every sample of every car");
  raw_only(cmd->add_option("--days", t.days, "--raw: days simulated per car, from 2021-01-01 UTC")
               ->capture_default_str()
               ->check(CLI::Range(0.0, 3660.0)));
  raw_only(cmd->add_option("--interval", t.interval_s, "--raw: nominal seconds between samples")
               ->capture_default_str()
               ->check(CLI::Range(0.1, 600.0)));
  raw_only(cmd->add_option("--jitter", t.jitter_s, "--raw: each sample's time is off by up to this many seconds")
               ->capture_default_str()
               ->check(CLI::NonNegativeNumber));
  raw_only(cmd->add_option("--drop-rate", t.drop_rate, "--raw: probability that a row is missing")
               ->capture_default_str()
               ->check(CLI::Range(0.0, 1.0)));
  raw_only(cmd->add_option("--empty-rate", t.empty_rate, "--raw: probability that a signal cell is empty")
               ->capture_default_str()
               ->check(CLI::Range(0.0, 1.0)));
  raw_only(cmd->add_option("--current-sign", a.current_sign, "--raw: sign of the current while charging")
               ->capture_default_str()
               ->check(CLI::IsMember({"positive", "negative"})));
  raw_only(cmd->add_option("--timestamps", a.timestamps, "--raw: iso8601 (2021-01-01T00:00:10.250Z), epoch_s or epoch_ms")
               ->capture_default_str()
               ->check(CLI::IsMember({"iso8601", "epoch_s", "epoch_ms"})));
  raw_only(cmd->add_option("--delimiter", a.delimiter, "--raw: field delimiter: ',', ';' or tab")
               ->capture_default_str()
               ->check(CLI::IsMember({",", ";", "tab"})));
  raw_only(cmd->add_option("--spec-out", a.spec_out, "--raw: write the ingest spec (JSON) that reads the export"));
  raw_only(cmd->add_option("--labels-out", a.labels_out, "--raw: write car,label (1 = faulty)"));
  raw_only(cmd->add_option("--sessions-out", a.sessions_out,
                           "--raw: write the charging sessions: car,label,first_s,last_s,rows,mileage_km"));
}

// Passes everything on to another stream buffer, counting bytes and lines on the way.
class CountingStreambuf final : public std::streambuf {
 public:
  explicit CountingStreambuf(std::streambuf* to) : to_(to) {}
  std::uint64_t bytes = 0, lines = 0;

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const std::streamsize written = to_->sputn(s, n);
    bytes += static_cast<std::uint64_t>(written);
    lines += static_cast<std::uint64_t>(std::count(s, s + written, '\n'));
    return written;
  }
  int_type overflow(int_type ch) override {
    if (traits_type::eq_int_type(ch, traits_type::eof())) return traits_type::not_eof(ch);
    const int_type r = to_->sputc(traits_type::to_char_type(ch));
    if (!traits_type::eq_int_type(r, traits_type::eof())) {
      ++bytes;
      lines += traits_type::to_char_type(ch) == '\n';
    }
    return r;
  }
  int sync() override { return to_->pubsync(); }

 private:
  std::streambuf* to_;
};

inline int run_simulate_raw(SimulateArgs a) {
  for (const CLI::Option* o : a.segments_only)
    if (o->count() > 0) throw std::runtime_error(o->get_name() + " applies to --out only (a --raw export runs for --days)");
  sim::TelemetryConfig& t = a.telemetry;
  t.fleet = a.fleet;
  t.current_negative_when_charging = a.current_sign == "negative";
  t.timestamps = a.timestamps == "epoch_s"    ? sim::TimestampFormat::epoch_s
                 : a.timestamps == "epoch_ms" ? sim::TimestampFormat::epoch_ms
                                              : sim::TimestampFormat::iso8601;
  t.delimiter = a.delimiter == "tab" ? '\t' : a.delimiter.at(0);
  if (!(t.days > 0)) throw std::runtime_error("--days must be positive");
  if (!(t.drop_rate < 1)) throw std::runtime_error("--drop-rate must be below 1 (1 would drop every row)");
  if (!(t.jitter_s < t.interval_s / 2)) {
    char what[160];
    std::snprintf(what, sizeof what,
                  "--jitter (%g) must be below half of --interval (%g), so that each car's samples stay in order", t.jitter_s,
                  t.interval_s);
    throw std::runtime_error(what);
  }
  const nlohmann::json spec = sim::telemetry_spec(t);  // validates the rest before any file is created

  // Every output path is checked, and no two are the same file, before anything is written.
  const std::pair<const char*, const std::string*> outputs[] = {{"--raw", &a.raw},
                                                                {"--spec-out", &a.spec_out},
                                                                {"--labels-out", &a.labels_out},
                                                                {"--sessions-out", &a.sessions_out}};
  auto resolved = [](const std::string& p) { return std::filesystem::weakly_canonical(std::filesystem::absolute(p)); };
  for (std::size_t i = 0; i < std::size(outputs); ++i) {
    const std::string& path = *outputs[i].second;
    if (path.empty()) continue;
    check_output_path(path, outputs[i].first);
    for (std::size_t j = 0; j < i; ++j)
      if (!outputs[j].second->empty() && resolved(path) == resolved(*outputs[j].second))
        throw std::runtime_error(std::string(outputs[i].first) + " and " + outputs[j].first + " name the same file '" + path + "'");
  }

  std::vector<sim::ChargingSession> sessions;
  std::uint64_t bytes = 0, rows = 0;
  write_file_atomically(a.raw, [&](std::ostream& os) {
    CountingStreambuf counter(os.rdbuf());
    std::ostream counted(&counter);
    sessions = sim::write_raw_telemetry(t, counted);
    bytes = counter.bytes;
    rows = counter.lines - 1;  // the header
  });
  if (!a.spec_out.empty()) write_file_atomically(a.spec_out, [&](std::ostream& os) { os << spec.dump(2) << '\n'; });
  if (!a.labels_out.empty()) write_file_atomically(a.labels_out, [&](std::ostream& os) { sim::write_telemetry_labels(t, os); });
  if (!a.sessions_out.empty())
    write_file_atomically(a.sessions_out, [&](std::ostream& os) { sim::write_charging_sessions(sessions, os); });
  char size[32];
  std::snprintf(size, sizeof size, "%.1f MB", static_cast<double>(bytes) / 1e6);
  std::cerr << "dyad simulate: " << t.fleet.cars << " cars (" << t.fleet.faulty << " faulty) x " << t.days
            << " days, a sample every " << t.interval_s << " s; wrote " << rows << " rows (" << size << ") with " << sessions.size()
            << " charging sessions to " << a.raw << "\n";
  return 0;
}

inline int run_simulate(const SimulateArgs& a) {
  if (a.out.empty() == a.raw.empty())
    throw std::runtime_error(std::string("simulate needs exactly one of --out FILE (charging segments, long CSV) and "
                                         "--raw FILE (a raw telematics export); ") +
                             (a.out.empty() ? "got neither" : "got both"));
  if (!a.raw.empty()) return run_simulate_raw(a);
  for (const CLI::Option* o : a.raw_only)
    if (o->count() > 0) throw std::runtime_error(o->get_name() + " applies to --raw only");
  sim::fleet_cars(a.fleet);  // validates the configuration before any file is created
  check_output_path(a.out, "--out");
  if (!a.faults_out.empty()) check_output_path(a.faults_out, "--faults-out");
  write_file_atomically(a.out, [&](std::ostream& os) { sim::write_fleet_csv(a.fleet, os); });
  if (!a.faults_out.empty()) write_file_atomically(a.faults_out, [&](std::ostream& os) { sim::write_fault_table(a.fleet, os); });
  std::cerr << "dyad simulate: " << a.fleet.cars << " cars (" << a.fleet.faulty << " faulty) x " << a.fleet.segments_per_car
            << " segments x " << a.fleet.steps << " steps; wrote " << a.out << "\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
SimulateArgs simulate_args;
}  // namespace

namespace command {
void simulate_options(CLI::App* cmd) { add_simulate_options(cmd, simulate_args); }
int simulate_run() { return run_simulate(simulate_args); }
}  // namespace command

}  // namespace dyad::cli
