//! The protocol as a deterministic state machine.
