//! The node graph: reachability, pure cycles, unconnected results.
