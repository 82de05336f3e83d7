// Version, assertions and small macros shared by every dyad header.
#pragma once

#include <cassert>
#include <cstddef>

#define DYAD_VERSION_MAJOR 0
#define DYAD_VERSION_MINOR 1
#define DYAD_VERSION_PATCH 0
#define DYAD_VERSION_STRING "0.1.0"

// Without optimisation, training and scoring run tens of times slower: say so when compiling
// (a CMake build with no CMAKE_BUILD_TYPE is such a build). Define DYAD_ALLOW_UNOPTIMIZED to
// silence it, e.g. in a debug build.
#if (defined(__GNUC__) || defined(__clang__)) && !defined(__OPTIMIZE__) && !defined(DYAD_ALLOW_UNOPTIMIZED)
#warning \
    "dyad: compiled without optimisation: training and scoring run tens of times slower; build with -O2 (CMAKE_BUILD_TYPE=Release) and link dyad::native (or add -march=native), or define DYAD_ALLOW_UNOPTIMIZED"
#endif

// Internal invariants of the kernels (checked in debug builds only). Errors a user can cause,
// such as mismatched operand shapes, are std::invalid_argument in every build type.
#ifndef DYAD_ASSERT
#define DYAD_ASSERT(cond) assert(cond)
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DYAD_ALWAYS_INLINE inline __attribute__((always_inline))
#define DYAD_RESTRICT __restrict__
// Error paths: kept out of line so a check costs its callers a compare and a branch.
#define DYAD_COLD __attribute__((cold, noinline))
#else
#define DYAD_ALWAYS_INLINE inline
#define DYAD_RESTRICT
#define DYAD_COLD
#endif

namespace dyad {
// Saved activations and parameter buffers are aligned for AVX-512 loads.
inline constexpr std::size_t kAlignment = 64;
}  // namespace dyad
