// gru_layer / gru_direction: the GRU's names for the recurrent layer (dyad/ops/recurrent.hpp).
#pragma once

#include "dyad/ops/recurrent.hpp"
