"""Background jobs run by RQ workers (training). Tasks are thin adapters around app.ml."""
