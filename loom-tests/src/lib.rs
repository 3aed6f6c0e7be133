//! Loom models of shmsync's algorithms.
