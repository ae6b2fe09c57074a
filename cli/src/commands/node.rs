//! `wsis node`: runs this organisation's node and its local API until a signal, publishing the API address.

use super::runtime;
use crate::Failure;
use std::path::Path;
use std::str::FromStr;
use wsis_node::data_dir::DataDir;
use wsis_protocol::ids::FederationId;

/// `wsis node`.
#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// libp2p listen address (repeatable; default: the config's).
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// A peer to connect to, with `/p2p/<peer id>` (repeatable; added to the config's).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<String>,
    /// Join this federation: fetch its genesis from a bootstrap peer, check its hash, publish this
    /// organisation's inception and binding, and wait for admission.
    #[arg(long, value_name = "ID")]
    pub federation: Option<String>,
    /// Discover peers on the local network with mDNS (default: the config's).
    #[arg(long)]
    pub mdns: Option<bool>,
    /// Never connect to this node and refuse its connections (repeatable; added to the config's
    /// `blocked_peers`).
    #[arg(long, value_name = "PEER_ID")]
    pub block_peer: Vec<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
}

pub(super) fn node(dir: &Path, api: Option<&str>, args: NodeArgs) -> Result<(), Failure> {
    init_logging(&args.log_format);
    let data =
        DataDir::open(dir).map_err(|e| Failure::Failed(format!("{}: {e}", dir.display())))?;
    let api_addr: std::net::SocketAddr = match api {
        Some(a) => a.parse().map_err(|_| {
            Failure::Usage(format!(
                "--api {a}: expected HOST:PORT, e.g. 127.0.0.1:7300"
            ))
        })?,
        None => data.config().api_addr,
    };
    let parse = |list: &[String], what: &str| -> Result<Vec<wsis_node::net::Multiaddr>, Failure> {
        list.iter()
            .map(|a| {
                a.parse()
                    .map_err(|_| Failure::Usage(format!("{what} {a}: not a multiaddr")))
            })
            .collect()
    };
    let join = args
        .federation
        .as_deref()
        .map(|f| {
            FederationId::from_str(f.trim()).map_err(|_| {
                Failure::Usage(format!(
                    "--federation {f}: expected fed_ followed by 64 hex digits"
                ))
            })
        })
        .transpose()?;
    let blocked_peers = args
        .block_peer
        .iter()
        .map(|p| {
            p.trim().parse::<wsis_node::net::PeerId>().map_err(|_| {
                Failure::Usage(format!(
                    "--block-peer {p}: not a peer id (expected a libp2p peer id such as 12D3KooW…, as `wsis status` prints it)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = wsis_node::node::NodeOptions {
        listen: parse(&args.listen, "--listen")?,
        bootstrap: parse(&args.bootstrap, "--bootstrap")?,
        mdns: args.mdns,
        blocked_peers,
        join,
    };
    let token = data.api_token().to_string();
    let addr_file = data.api_addr_file();
    runtime()?.block_on(async move {
        let node = wsis_node::node::Node::start(data, options)
            .await
            .map_err(|e| Failure::Failed(error_chain(&e)))?;
        let listener = wsis_node::api::bind(api_addr).await.map_err(|e| {
            Failure::Failed(format!("cannot listen on {api_addr} for the API: {e}"))
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| Failure::Failed(e.to_string()))?;
        addr_file.write(bound).map_err(|e| {
            Failure::Failed(format!("cannot write {}: {e}", addr_file.path().display()))
        })?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(wsis_node::api::serve(
            node.clone(),
            token,
            listener,
            async {
                let _ = stop_rx.await;
            },
        ));
        tracing::info!(org = %node.org(), peer = %node.peer_id(), api = %bound, "node running");
        let watcher = tokio::spawn(announce_admission(node.clone()));
        let result = node.run_until_signal().await;
        watcher.abort();
        let _ = stop_tx.send(());
        let _ = server.await;
        node.shutdown().await;
        let _ = addr_file.remove();
        result.map_err(|e| Failure::Failed(format!("signal handling failed: {e}")))
    })
}

/// Logs once when this organisation is admitted (a joining node waits for a secretariat).
pub(super) async fn announce_admission(node: wsis_node::node::Node) {
    let me = node.org();
    let mut waited = false;
    loop {
        if node.with_gov(|g| g.is_member(&me)).await {
            if waited {
                tracing::info!(org = %me, "admitted to the federation");
            }
            return;
        }
        if !waited {
            tracing::info!(org = %me, "waiting for admission: a secretariat organisation runs `wsis org admit {me}`");
            waited = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

pub(super) fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSIS_LOG")
        // libp2p's crates log under their own targets (libp2p_gossipsub, yamux, …): at 50 nodes gossipsub's
        // "send queue full" warnings alone wrote hundreds of MB per node and saturated the machine.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,libp2p=warn,libp2p_gossipsub=error,libp2p_swarm=warn,yamux=error,multistream_select=error",
            )
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
