//! The end-of-run summary.
