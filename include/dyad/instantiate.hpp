// Compile once: the explicit instantiations of dyad's common templates, for a program that
// builds them in one translation unit instead of in every file that fits or scores a model.
// dyad stays header-only; this is an option. To use it:
//   1. define DYAD_EXTERN_TEMPLATES for every translation unit that includes dyad (the headers
//      then declare these instances `extern template`, and do not compile them);
//   2. in exactly one .cpp file of the program (or one per scalar type, built in parallel):
//        #include <dyad/instantiate.hpp>
//        DYAD_INSTANTIATE(float)
//        DYAD_INSTANTIATE(double)
// Model<T, Hidden, Latent> of compile-time sizes does its work in Model<T>, so these cover it.
// Every translation unit must be built with the same flags (e.g. -march) as the instances.
#pragma once

#include "dyad/ensemble.hpp"
#include "dyad/model.hpp"
#include "dyad/network.hpp"
#include "dyad/nn/recurrent.hpp"
#include "dyad/trainer.hpp"

// The instances for one scalar type T (float or double), with sizes from the configuration.
#define DYAD_INSTANTIATE(T)                     \
  template class dyad::RecurrentStack<T>;       \
  template class dyad::Network<T>;              \
  template class dyad::Model<T>;                \
  template class dyad::Trainer<dyad::Model<T>>; \
  template class dyad::Ensemble<T>;
