// Flushes denormal floats to zero while dyad computes. Backpropagating through long
// sequences drives gradients into the denormal range, where x86 arithmetic is about 100x
// slower (a fivefold training step at T = 256 took 12x longer than at T = 128). The caller's
// floating-point mode is restored on exit.
#pragma once

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#define DYAD_HAS_MXCSR 1
#endif

namespace dyad {

class FlushDenormals {
 public:
#ifdef DYAD_HAS_MXCSR
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ | DAZ
  ~FlushDenormals() { _mm_setcsr(saved_); }
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
#ifdef DYAD_HAS_MXCSR
  unsigned saved_;
#endif
};

}  // namespace dyad
