//! Reports on what the detector did in a replay: [`tap`] watches a baseline store for
//! what the detector learns (first-seen sets, counted launches), for `baseline build`'s
//! summary.

pub mod tap;
