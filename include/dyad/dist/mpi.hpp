// dyad::MpiCommunicator: the Communicator over MPI (Open MPI from Debian: openmpi-bin,
// libopenmpi-dev), and MpiSession, which initialises MPI for a program that mpirun launched.
// Needs <mpi.h> and the MPI library (CMake: MPI::MPI_CXX); dyad/dyad.hpp does not include it,
// so the rest of dyad never depends on MPI.
#pragma once

#include "dyad/dist/communicator.hpp"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <span>
#include <stdexcept>
#include <string>

namespace dyad {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm = MPI_COMM_WORLD) : comm_(comm) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(std::span<float> v) const override { reduce(v.data(), v.size(), MPI_FLOAT, MPI_SUM); }
  void sum(std::span<double> v) const override { reduce(v.data(), v.size(), MPI_DOUBLE, MPI_SUM); }
  void max(std::span<double> v) const override { reduce(v.data(), v.size(), MPI_DOUBLE, MPI_MAX); }
  MPI_Comm handle() const { return comm_; }

 private:
  // MPI counts are ints: longer buffers go in pieces. MPI's default error handler aborts the
  // job on a failed collective, so there is no return code to check.
  template <class X>
  void reduce(X* data, std::size_t n, MPI_Datatype type, MPI_Op op) const {
    for (std::size_t done = 0; done < n;) {
      const int count = static_cast<int>(std::min<std::size_t>(n - done, INT_MAX));
      MPI_Allreduce(MPI_IN_PLACE, data + done, count, type, op, comm_);
      done += static_cast<std::size_t>(count);
    }
  }
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

// MPI for the life of a program, when a launcher (mpirun, srun) started it: a program run on its
// own stays a plain single process and never touches MPI. The pool's worker threads make no
// MPI calls, so MPI_THREAD_FUNNELED is enough.
class MpiSession {
 public:
  static bool launched() {
    for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK"})
      if (std::getenv(var)) return true;
    return false;
  }
  MpiSession(int* argc, char*** argv) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      throw std::runtime_error("dyad: MPI_Init_thread failed");
  }
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  ~MpiSession() { MPI_Finalize(); }
  // Ends every rank of the job: what a rank that fails alone must do, since the others would
  // otherwise wait for it in their next collective.
  [[noreturn]] static void abort(int code) {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }
};

// The MPI library's own version line, e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ...".
inline std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(text, &length);
  std::string v(text, static_cast<std::size_t>(std::max(length, 0)));
  v = v.substr(0, v.find('\n'));
  while (!v.empty() && (v.back() == '\0' || v.back() == ' ')) v.pop_back();
  return v;
}

}  // namespace dyad
