//! The shape shared by the random ids carried on the wire (cluster ids,
//! incarnations): a non-zero `u64`, 0 standing for "none" in envelopes.

/// Implements `new`, `random`, `get` and `wire` for a newtype over a
/// non-zero `u64`; `$none` says what 0 means on the wire.
macro_rules! nonzero_id {
    ($name:ident, $none:literal) => {
        impl $name {
            #[doc = concat!("The id `raw`; `None` for 0, which means ", $none, ".")]
            pub const fn new(raw: u64) -> Option<Self> {
                match raw {
                    0 => None,
                    raw => Some(Self(raw)),
                }
            }

            /// A fresh random id, from the operating system's randomness, so
            /// that ids drawn on different machines (or with one seed) differ.
            pub fn random() -> Self {
                loop {
                    if let Some(id) = Self::new(rand::random()) {
                        return id;
                    }
                }
            }

            /// The number, as carried in envelopes.
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The envelope value of an optional id: 0 for none.
            pub fn wire(id: Option<Self>) -> u64 {
                id.map_or(0, Self::get)
            }
        }
    };
}

pub(crate) use nonzero_id;
