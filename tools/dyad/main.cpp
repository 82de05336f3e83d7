// The dyad command line: train, score and the fleet tools built on the library.
#include "commands.hpp"
#include "common.hpp"

#include <CLI/CLI.hpp>

#include <dyad/core/mapped_file.hpp>

#ifdef DYAD_WITH_MPI
#include <dyad/dist/mpi.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// `dyad --version`: the version and whether this build runs across MPI ranks.
std::string version_text() {
#ifdef DYAD_WITH_MPI
  return DYAD_VERSION_STRING "\nMPI: " + dyad::mpi_library_version() + " (mpirun -np N dyad train | score)";
#else
  return DYAD_VERSION_STRING "\nMPI: no (built without MPI; install libopenmpi-dev and rebuild for mpirun)";
#endif
}

// The commands that run across ranks, for a message: "train and score".
std::string across_ranks_names() {
  std::vector<std::string_view> names;
  for (const auto& c : dyad::cli::commands)
    if (c.across_ranks) names.push_back(c.name);
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "" : i + 1 == names.size() ? " and " : ", ") + std::string(names[i]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dyad::cli;
#ifdef DYAD_WITH_MPI
  // MPI only under a launcher; on its own dyad stays a plain process.
  std::optional<dyad::MpiSession> mpi;
  std::unique_ptr<dyad::MpiCommunicator> world;
  if (dyad::MpiSession::launched()) {
    mpi.emplace(&argc, &argv);
    world = std::make_unique<dyad::MpiCommunicator>();
    cli_ranks = world.get();
  }
#endif
  const int rank = ranks().rank(), size = ranks().size();
  // Rank 0 speaks for the job; the other ranks' messages would repeat it N times. Their errors
  // still reach stderr (below).
  std::streambuf* const cerr_buffer = std::cerr.rdbuf();
  if (rank != 0) std::cerr.rdbuf(nullptr);

  // Ctrl-C or a kill while an output is being written removes its hidden temporary file.
  dyad::remove_temporaries_on_signals();
  // A segment store truncated or rewritten in place while mapped: a message, not "Bus error".
  dyad::report_mapped_file_faults();
  CLI::App app{"dyad " DYAD_VERSION_STRING
               ": find faulty EV battery packs from charging telemetry (DyAD sequence VAE, Nature Communications 14, 5940)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());

  for (const Command& c : commands) c.add_options(app.add_subcommand(std::string(c.name), std::string(c.help)));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return rank == 0 ? app.exit(e) : (e.get_exit_code() == 0 ? 0 : 1);  // every rank parses the same arguments
  }
  const std::string chosen = app.get_subcommands().front()->get_name();
  const Command& command = *std::find_if(commands.begin(), commands.end(), [&](const Command& c) { return c.name == chosen; });
  if (size > 1 && !command.across_ranks) {
    if (rank == 0)
      std::cerr << "dyad: error: dyad " << chosen << " runs in one process; of the commands only " << across_ranks_names()
                << " run across mpirun's " << size << " ranks\n";
    return 2;
  }
  try {
    return command.run();
  } catch (const std::exception& e) {
    std::string_view what = e.what();
    if (what.starts_with("dyad: ")) what.remove_prefix(6);  // the library's own prefix, said once
    // Under mpirun the other ranks may be waiting for this one in a collective, so the job ends
    // (MPI_Abort). Most errors (bad data, a bad model) strike every rank alike: the others let
    // rank 0 report first, whose abort ends them before they say the same thing again.
    if (rank != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
    std::cerr.rdbuf(cerr_buffer);
    std::cerr.clear();
    std::cerr << "dyad: error" << (rank != 0 ? " (rank " + std::to_string(rank) + ")" : std::string()) << ": " << what << "\n";
    const int status = dynamic_cast<const dyad::cli::UsageError*>(&e) ? 2 : 1;
#ifdef DYAD_WITH_MPI
    if (size > 1) dyad::MpiSession::abort(status);
#endif
    return status;
  }
}
