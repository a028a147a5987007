//! The process's open-file limit, and the share of it client connections
//! may take.
//!
//! Every client connection, Raft connection, WAL segment and snapshot file
//! is a file descriptor. Many systems start services with a soft limit of
//! 1,024 (and a much higher hard one): there, about a thousand idle HTTP
//! clients used to take every descriptor, and the node could then neither
//! accept a peer's Raft connection nor open its next WAL segment. So
//! `serve` raises the soft limit to the hard one at start (as Go does for
//! etcd), and caps the API's connections below it, keeping a reserve for
//! everything else.

/// What the open-file limit was and is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit before `serve` raised it.
    pub before: u64,
    /// The soft limit now.
    pub now: u64,
}

/// Raises this process's soft open-file limit to its hard limit; `None`
/// where the limit cannot be read (the caller then keeps its default cap).
pub fn raise_to_hard_limit() -> Option<OpenFileLimit> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given, nothing else.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Some(OpenFileLimit { before, now: limit.rlim_cur })
}

/// The soft open-file limit now, if it can be read.
pub fn current_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: as in `raise_to_hard_limit`.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit.rlim_cur)
}

/// Descriptors kept out of the API's reach: peers' Raft connections, WAL
/// segments, snapshot files, the runtime's own. A quarter of a small limit,
/// at most 1,024 of a large one.
fn reserve(limit: u64) -> u64 {
    (limit / 4).min(1024)
}

/// The API connections a node with open-file limit `limit` serves at once
/// by default: all but [`reserve`]'s share.
pub fn default_api_connections(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(reserve(limit))).unwrap_or(usize::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_a_reserve_for_peers_and_files() {
        assert_eq!(default_api_connections(1024), 768, "a quarter of a small limit is kept");
        assert_eq!(default_api_connections(20_000), 18_976, "at most 1,024 of a large one");
        assert_eq!(default_api_connections(0), 1, "never zero: the node stays reachable");
    }

    #[test]
    fn raising_reaches_the_hard_limit() {
        let limit = raise_to_hard_limit().expect("readable on Linux");
        let mut now = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) }, 0);
        assert_eq!(limit.now, now.rlim_cur);
        assert_eq!(now.rlim_cur, now.rlim_max, "the soft limit is the hard one");
        assert!(limit.now >= limit.before);
    }
}
