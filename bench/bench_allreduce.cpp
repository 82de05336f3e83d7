// The cost of data-parallel training's one collective: MPI_Allreduce (sum) of a preset's whole
// gradient, as Trainer::step does every mini-batch (dyad/trainer.hpp), measured on the ranks
// mpirun gives it. docs/scaling.md extrapolates these numbers to clusters.
//   mpirun -np 2 build/bench/bench_allreduce [--reps N] [--json]
// Prints, per preset: the gradient's floats and bytes, the median time of one allreduce, and
// the algorithm and bus bandwidths (busbw = bytes / time x 2(p-1)/p, the ring's traffic per
// link), plus the 5-double reduction of the loss values each step also makes.
#include "bench_util.hpp"

#include <dyad/dist/mpi.hpp>
#include <dyad/model.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

double median_seconds(const dyad::MpiCommunicator& comm, std::vector<float>& buffer, int reps) {
  std::vector<double> times;
  for (int r = -3; r < reps; ++r) {  // three warm-up rounds
    MPI_Barrier(comm.handle());
    const double t0 = MPI_Wtime();
    comm.sum(std::span<float>(buffer));
    double t = MPI_Wtime() - t0;
    MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm.handle());  // the slowest rank's
    if (r >= 0) times.push_back(t);
  }
  std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  dyad::MpiSession session(&argc, &argv);
  const dyad::MpiCommunicator comm;
  int reps = 50;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--json")) json = true;
    else {
      if (comm.root()) std::fprintf(stderr, "usage: mpirun -np N bench_allreduce [--reps N] [--json]\n");
      return 2;
    }
  }
  const int p = comm.size();
  if (comm.root() && !json)
    std::printf("%d rank(s), MPI: %s\n%-9s %10s %10s %12s %12s %12s\n", p, dyad::mpi_library_version().c_str(), "preset", "floats",
                "MiB", "median ms", "algbw GB/s", "busbw GB/s");
  for (const std::string& name : dyad::preset_names()) {
    const dyad::Model<float> model(dyad::preset(name));
    std::vector<float> gradient(model.parameters().count(), 1.0f);
    const double s = median_seconds(comm, gradient, reps);
    const double bytes = 4.0 * static_cast<double>(gradient.size());
    const double algbw = p > 1 ? bytes / s / 1e9 : 0.0, busbw = algbw * 2.0 * (p - 1) / p;  // one rank moves nothing
    if (!comm.root()) continue;
    if (json)
      std::printf(
          "{\"preset\":\"%s\",\"ranks\":%d,\"floats\":%zu,\"bytes\":%.0f,\"median_s\":%.9g,\"algbw_gbs\":%.6g,"
          "\"busbw_gbs\":%.6g}\n",
          name.c_str(), p, gradient.size(), bytes, s, algbw, busbw);
    else
      std::printf("%-9s %10zu %10.2f %12.4f %12.2f %12.2f\n", name.c_str(), gradient.size(), bytes / 1048576.0, s * 1e3, algbw,
                  busbw);
  }
  std::vector<float> values(5, 1.0f);  // the loss values and the stop flag (doubles in dyad: same size class)
  const double small = median_seconds(comm, values, reps);
  if (comm.root()) {
    if (json) std::printf("{\"preset\":\"loss_values\",\"ranks\":%d,\"floats\":5,\"median_s\":%.9g}\n", p, small);
    else std::printf("%-9s %10d %10s %12.4f   (latency of a small allreduce)\n", "values", 5, "", small * 1e3);
  }
  return 0;
}
