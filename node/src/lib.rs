//! # wsis-node
//!
//! A node of a WSIS federation: one organisation's replica of the federation's governance ops and content
//! documents, kept durable on disk and in sync with the other organisations' nodes.
//!
//! The parts, from the outside in:
//!
//! - [`data_dir`]: the node's data directory (`config.toml`, the organisation and node keys, the API token, the
//!   signed inception record, the database) and every file name in it;
//! - [`node`]: the running node ([`Node`]): local ops and edits, sync with peers, serving peers' requests;
//! - [`api`]: the local HTTP API the `wsis` CLI (and the testnet) drive; [`api::types`] holds every body;
//! - [`chair`]: the Chair's tool, which assembles the stocktaking bundle from a running node;
//! - [`engine`]: the verified Automerge document engine (the acceptance pipeline for change envelopes);
//! - [`store`]: durable storage on sled, with group commit; the only module that knows sled;
//! - [`net`]: libp2p networking and the sync wire protocol; the only module that knows libp2p.
//!
//! A node in a few lines (see `node/tests/federation.rs` for whole federations):
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use wsis_node::{DataDir, Node, NodeOptions};
//!
//! let data = DataDir::open("/var/lib/wsis")?;
//! let node = Node::start(data, NodeOptions::default()).await?;
//! println!("{:?}", node.stats());
//! node.shutdown().await;
//! # Ok(()) }
//! ```
pub mod api;
pub mod chair;
pub mod data_dir;
pub mod engine;
// The body of the wire fuzz target (fuzz/), shared with the stable corpus replay (tests/fuzz_corpora.rs).
#[doc(hidden)]
pub mod fuzz;
pub mod net;
pub mod node;
mod parking;
pub mod store;

pub use data_dir::{ApiAddrFile, DataDir, InitOptions};
pub use engine::{DocumentEngine, EnvelopeSink, MemorySink, Peer, ReceiveError, Received};
pub use net::{Multiaddr, NetConfig, Network, PeerId};
pub use node::{
    create_federation, Node, NodeOptions, NodeStats, StartError, StoreSink, SubmitError,
};
pub use store::{Store, StoreError, StoreOpenError};
