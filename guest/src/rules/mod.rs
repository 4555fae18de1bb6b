//! The detection rules: previously unseen values, and abnormal launch rates.

pub mod rate;
pub mod unseen;
