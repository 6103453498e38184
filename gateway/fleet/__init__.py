"""The fleet: resolver workers and the arbiter's source of observations (docs/fleet.md)."""
