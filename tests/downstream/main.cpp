// Uses an installed dyad through find_package(dyad) and dyad::dyad.
#include <dyad/dyad.hpp>

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(DYAD_VERSION_STRING, DYAD_PACKAGE_VERSION) != 0) {
    std::fprintf(stderr, "header version %s != package version %s\n", DYAD_VERSION_STRING, DYAD_PACKAGE_VERSION);
    return 1;
  }
  dyad::Rng a(42), b(42);
  double sum = 0.0;
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    if (u < 0.0 || u >= 1.0 || u != b.uniform()) {
      std::fprintf(stderr, "dyad::Rng misbehaves at draw %d\n", i);
      return 1;
    }
    sum += u;
  }
  std::printf("dyad %s downstream ok (mean of 1000 uniforms %.3f)\n", DYAD_VERSION_STRING, sum / 1000.0);
  return 0;
}
