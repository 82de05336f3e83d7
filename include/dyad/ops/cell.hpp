// The recurrent cells dyad implements, as upstream's params files name them (`rnn_type`):
// PyTorch's nn.GRU, nn.RNN (tanh) and nn.LSTM. A cell's weights stack `gates(cell)` blocks of
// H rows: GRU (r, z, n), RNN (one), LSTM (i, f, g, o).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace dyad {

enum class Cell { gru, rnn, lstm };

constexpr std::int64_t gates(Cell cell) { return cell == Cell::gru ? 3 : cell == Cell::rnn ? 1 : 4; }

constexpr std::string_view to_string(Cell cell) { return cell == Cell::gru ? "gru" : cell == Cell::rnn ? "rnn" : "lstm"; }

// Upstream writes the cell in lower or upper case ("gru", "GRU").
inline Cell parse_cell(std::string_view name) {
  for (const Cell c : {Cell::gru, Cell::rnn, Cell::lstm}) {
    const std::string_view lower = to_string(c);
    bool same = name.size() == lower.size();
    for (std::size_t i = 0; same && i < name.size(); ++i) same = name[i] == lower[i] || name[i] == lower[i] - 'a' + 'A';
    if (same) return c;
  }
  const std::string shown = name.size() > 40 ? std::string(name.substr(0, 40)) + "..." : std::string(name);
  throw std::invalid_argument("'" + shown + "' is not a cell dyad implements (expected gru, rnn or lstm)");
}

// The cell whose weight_hh has `rows` rows for hidden size `hidden` (3H, H or 4H); false when none.
constexpr bool cell_from_rows(std::int64_t rows, std::int64_t hidden, Cell& cell) {
  for (const Cell c : {Cell::gru, Cell::rnn, Cell::lstm})
    if (rows == gates(c) * hidden) return cell = c, true;
  return false;
}

}  // namespace dyad
