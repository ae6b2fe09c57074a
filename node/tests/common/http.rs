//! A minimal HTTP/1.1 client for the local API over a real TCP socket: one request per connection, so a
//! dropped connection shows as status 0 instead of being hidden by a pool's retry.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one request and returns `(status, body)`; status 0 means the connection gave no HTTP answer.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    // A refused oversized body may close the connection before it is all written.
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// [`http`] with the token and a text body, as most tests call it.
pub async fn call(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    http(addr, method, path, Some(token), body.as_bytes()).await
}

/// The API of `node` on a loopback port: its address, a sender that stops it, and its task (which holds a
/// handle on the node, and so the store's lock, until it returns).
pub async fn serve_api(
    node: &wsis_node::node::Node,
    token: &str,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = wsis_node::api::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(wsis_node::api::serve(
        node.clone(),
        token.to_string(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop, task)
}
