//! Set-up shared by the node's integration tests (each test file is its own crate and uses what it needs, hence
//! `dead_code` allowed): an organisation's data directory, loopback listen addresses, and the sync protocol's
//! length-prefixed frame that the raw and malicious peers write by hand; whole nodes in [`nodes`], the raw
//! sync codec in [`raw`] and the malicious sync server built on it in [`evil`].

#![allow(dead_code)]

pub mod evil;
pub mod http;
pub mod nodes;
pub mod raw;

use wsis_node::data_dir::{DataDir, InitOptions};
use wsis_node::net::Multiaddr;
use wsis_protocol::op::{Country, StakeholderType};

/// Listen on a free loopback TCP port.
pub fn loopback() -> Vec<Multiaddr> {
    vec!["/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr")]
}

/// Initialises the data directory `root/name` of an organisation called `name`.
pub fn init(
    root: &std::path::Path,
    name: &str,
    st: StakeholderType,
    country: Option<&str>,
) -> DataDir {
    DataDir::init(
        root.join(name),
        InitOptions {
            name: name.into(),
            stakeholder: st,
            country: country.map(|c| Country::new(c).expect("valid")),
        },
    )
    .expect("init")
}

/// `payload` behind its 4-byte big-endian length, as the sync protocol frames every request and response.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}
