//! The stable text form of the IR (`vflow ir`).
