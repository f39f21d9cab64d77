//! The single integration-test binary (one link step for every integration test).

// The Immuta emulator, driven over real HTTP on 127.0.0.1: V2 full-replace semantics, V1 reads,
// licenses, auth, test controls, persistence and the `emulator` subcommand.
mod emulator;
