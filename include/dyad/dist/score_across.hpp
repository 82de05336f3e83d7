// Scoring across ranks: each rank scores a share of the segments and every rank receives the
// whole table, bitwise what one process computes. gather_scores puts the shares together: each
// rank scored some rows of the whole table, and a sum over ranks of tables that are -0.0 everywhere else
// yields every row exactly (x + -0.0 == x for every x, including -0.0 and NaN), so the result
// is bitwise what one process computes. Used by data-parallel training's scorer and
// calibration fits and by sharded `dyad score`.
#pragma once

#include "dyad/detect/scores.hpp"
#include "dyad/dist/communicator.hpp"

#include <algorithm>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace dyad {

// `local` holds, in order, rows `rows` of an n-row table; every rank passes its own rows
// (together each row exactly once) and receives the whole table.
inline Scores gather_scores(const Communicator& comm, const Scores& local, std::span<const std::size_t> rows, std::size_t n) {
  if (local.size() != rows.size())
    throw std::invalid_argument("dyad::gather_scores: " + std::to_string(local.size()) + " scores for " +
                                std::to_string(rows.size()) + " rows");
  const auto N = static_cast<Eigen::Index>(n);
  Scores all;
  all.targets = local.targets;
  // A score not produced (no fitted latent scorers) stays empty. A rank without rows cannot
  // tell, so the ranks agree on which scores exist first.
  double produced[3] = {0, 0, 0};
  const Eigen::VectorXd* optional[3] = {&local.latent_score, &local.pattern_score, &local.combined_score};
  for (int k = 0; k < 3; ++k) produced[k] = local.size() > 0 && optional[k]->size() == local.rec_error.size() ? 1 : 0;
  comm.max(produced);
  auto gather = [&](const auto& part, auto& whole, bool present = true) {
    if (!present) return;
    whole.setConstant(N, part.cols(), -0.0);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (rows[i] >= n) throw std::out_of_range("dyad::gather_scores: row " + std::to_string(rows[i]) + " >= " + std::to_string(n));
      whole.row(static_cast<Eigen::Index>(rows[i])) = part.row(static_cast<Eigen::Index>(i));
    }
    comm.sum(std::span<double>(whole.data(), static_cast<std::size_t>(whole.size())));
  };
  gather(local.rec_error, all.rec_error);
  gather(local.target_error, all.target_error);
  gather(local.mu, all.mu);
  gather(local.log_var, all.log_var);
  gather(local.latent_score, all.latent_score, produced[0] > 0);
  gather(local.pattern_score, all.pattern_score, produced[1] > 0);
  gather(local.combined_score, all.combined_score, produced[2] > 0);
  return all;
}

// Scores the listed segments of `data` with `model` (a Model or an Ensemble) `batch` at a time in
// workspace `ws`, each rank a contiguous share of the batches; every rank returns all of them,
// row i for segments[i]. Each batch is the one a single process scores, so the result is bitwise
// model.score(data, segments, batch) (a segment's scores may differ in the last bits with the
// batch it is scored in, since the GEMMs' summation order depends on the batch's size).
template <class M>
Scores score_across(const Communicator& comm, const M& model, typename M::Workspace& ws, const Dataset& data,
                    std::span<const std::size_t> segments, std::size_t batch = 256) {
  if (comm.size() == 1) return model.score(ws, data, segments, batch);
  batch = std::max<std::size_t>(batch, 1);
  const Share batches = share_of((segments.size() + batch - 1) / batch, comm.rank(), comm.size());
  const std::size_t first = std::min(batches.first * batch, segments.size()),
                    last = std::min((batches.first + batches.count) * batch, segments.size());
  std::vector<std::size_t> rows(last - first);
  std::iota(rows.begin(), rows.end(), first);
  return gather_scores(comm, model.score(ws, data, segments.subspan(first, last - first), batch), rows, segments.size());
}

// The same with a workspace of the model's thread count, as model.score(data, segments, batch).
template <class M>
Scores score_across(const Communicator& comm, const M& model, const Dataset& data, std::span<const std::size_t> segments,
                    std::size_t batch = 256) {
  typename M::Workspace ws(model.config().threads);
  return score_across(comm, model, ws, data, segments, batch);
}

}  // namespace dyad
