//! Items public only to the crate's own tests and the simulator.
//!
//! The engine's leader, candidate and progress state, and its log, are
//! internals: users drive a node through [`crate::Raft`] and read it through
//! [`crate::RaftMetrics`]. The simulator's invariant checks need to look
//! inside, so with the `testing` feature those items become public; without
//! it they are crate-private and can change freely.

/// Declares an item `pub` with the `testing` feature and `pub(crate)` without.
macro_rules! testing_pub {
    ($(#[$meta:meta])* $kind:ident $($rest:tt)*) => {
        #[cfg(feature = "testing")]
        $(#[$meta])*
        pub $kind $($rest)*

        #[cfg(not(feature = "testing"))]
        $(#[$meta])*
        #[allow(unused_imports, unreachable_pub)]
        pub(crate) $kind $($rest)*
    };
}
