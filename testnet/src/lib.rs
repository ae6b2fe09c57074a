//! wsis-testnet (work in progress).
