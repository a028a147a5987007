//! Guides for library users: how to build, run and operate a ferraft cluster.
//!
//! Each page is a module with no items, only prose and examples; the examples
//! are compiled and run as doctests, so they stay true to the API.
//!
//! | page | read it when |
//! |---|---|
//! | [`getting_started`] | you want a replicated service running |
//! | [`cluster_initialization`] | you bring a new cluster up |
//! | [`membership`] | you add, remove, promote or re-address nodes |
//! | [`promotion`] | you want to see a node catch up, or have it promoted once ready |
//! | [`storage_and_network`] | you implement [`LogStore`](crate::LogStore), [`Network`](crate::Network) or [`StateMachine`](crate::StateMachine) |
//! | [`reads`] | you need reads that see every acknowledged write |
//! | [`operations`] | you run a cluster: restarts, lost disks, mistakes, metrics |
//! | [`faq`] | something surprised you |

pub mod getting_started {
    #![doc = include_str!("getting_started.md")]
}

pub mod cluster_initialization {
    #![doc = include_str!("cluster_initialization.md")]
}

pub mod membership {
    #![doc = include_str!("membership.md")]
}

pub mod promotion {
    #![doc = include_str!("promotion.md")]
}

pub mod storage_and_network {
    #![doc = include_str!("storage_and_network.md")]
}

pub mod reads {
    #![doc = include_str!("reads.md")]
}

pub mod operations {
    #![doc = include_str!("operations.md")]
}

pub mod faq {
    #![doc = include_str!("faq.md")]
}
