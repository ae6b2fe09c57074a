//! Storage on sled.
