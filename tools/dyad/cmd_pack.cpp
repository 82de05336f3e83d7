// dyad pack: a long CSV to a segment store (dyad/io/segment_store.hpp), which every command's
// --data reads as it reads the CSV, without parsing and without loading it into memory.

#include "commands.hpp"
#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dyad::cli {

struct PackArgs {
  std::string data, out;
};

inline void add_pack_options(CLI::App* cmd, PackArgs& a) {
  cmd->add_option("--data", a.data, "Long CSV to pack (one row per time step)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--out", a.out, "Where to write the segment store (one file, e.g. fleet.dyadset)")->required();
}

inline int run_pack(const PackArgs& a) {
  check_output_path(a.out, "--out");
  check_output_not_input(a.out, "--out", {{"--data", a.data}});
  if (is_safetensors_file(a.data))
    throw std::invalid_argument("--data '" + a.data + "' is already a segment store (or another safetensors file)");
  const auto start = std::chrono::steady_clock::now();
  const PackReport r = pack_segment_store(a.data, a.out);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::error_code ec;
  const auto in = std::filesystem::file_size(a.data, ec), out = std::filesystem::file_size(a.out, ec);
  std::cerr << "dyad pack: " << r.segments << " segments (" << r.rows << " rows, " << r.cars << " cars) in " << clock(seconds)
            << "; wrote " << a.out << " (" << out / (1 << 20) << " MiB from " << in / (1 << 20) << " MiB of CSV)\n";
  return 0;
}

// The table entries (commands.hpp): the arguments live here, filled by CLI11, read by run.
namespace {
PackArgs pack_args;
}  // namespace

namespace command {
void pack_options(CLI::App* cmd) { add_pack_options(cmd, pack_args); }
int pack_run() { return run_pack(pack_args); }
}  // namespace command

}  // namespace dyad::cli
