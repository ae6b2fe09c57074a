//! Identity and data directory.
