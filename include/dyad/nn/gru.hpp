// GruStack / GruShape: the GRU's names for the recurrent stack (dyad/nn/recurrent.hpp).
#pragma once

#include "dyad/nn/recurrent.hpp"
