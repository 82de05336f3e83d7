// dyad simulate: stream a synthetic fleet to a long CSV (constant memory).
#pragma once

#include "common.hpp"

#include <CLI/CLI.hpp>

namespace dyad::cli {

struct SimulateArgs {
  sim::FleetConfig fleet;
  std::string out;
};

inline void add_simulate_options(CLI::App* cmd, SimulateArgs& a) {
  cmd->add_option("--cars", a.fleet.cars, "Cars in the fleet")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--faulty", a.fleet.faulty, "How many of them carry a fault")->capture_default_str();
  cmd->add_option("--segments", a.fleet.segments_per_car, "Charging segments per car")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--steps", a.fleet.steps, "Time steps per segment")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", a.fleet.seed, "Random seed (the fleet is a pure function of it)")->capture_default_str();
  cmd->add_option("--out", a.out, "Output long CSV")->required();
}

inline int run_simulate(const SimulateArgs& a) {
  sim::fleet_cars(a.fleet);  // validates the configuration before any file is created
  check_output_path(a.out, "--out");
  write_file_atomically(a.out, [&](std::ostream& os) { sim::write_fleet_csv(a.fleet, os); });
  std::cerr << "dyad simulate: " << a.fleet.cars << " cars (" << a.fleet.faulty << " faulty) x " << a.fleet.segments_per_car
            << " segments x " << a.fleet.steps << " steps; wrote " << a.out << "\n";
  return 0;
}

}  // namespace dyad::cli
