//! Talking to a running node over its local API.
//!
//! The node is found through its data directory (`DATA/api.addr`, written by `wsis node` once the API listens;
//! otherwise `api_addr` from `DATA/config.toml`, and the token from `DATA/api.token`) or through `--api` with the
//! token in `WSIS_API_TOKEN`.

use crate::Failure;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;
use wsis_node::api::types::ErrorBody;

/// A response body larger than this is refused (a bundle of a large federation is the largest legitimate one).
const MAX_RESPONSE_BYTES: u64 = 512 * 1024 * 1024;

/// An API client bound to one node.
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Client {
    /// Finds the node from `--data-dir` and/or `--api`.
    pub fn locate(data_dir: Option<&Path>, api: Option<&str>) -> Result<Client, Failure> {
        let (addr, token) = match (data_dir, api) {
            (Some(dir), api) => {
                let data = wsis_node::data_dir::DataDir::open(dir).map_err(|e| {
                    Failure::Failed(format!("cannot open data directory {}: {e}", dir.display()))
                })?;
                let addr = match api {
                    Some(a) => a.to_string(),
                    None => data
                        .api_addr_file()
                        .read()
                        .unwrap_or(data.config().api_addr)
                        .to_string(),
                };
                (addr, data.api_token().to_string())
            }
            (None, Some(api)) => {
                let token = std::env::var("WSIS_API_TOKEN").map_err(|_| {
                    Failure::Usage(
                        "with --api, put the node's API token in WSIS_API_TOKEN (or use --data-dir)"
                            .into(),
                    )
                })?;
                (api.to_string(), token)
            }
            (None, None) => {
                return Err(Failure::Usage(
                    "say which node: --data-dir DIR (or WSIS_DATA_DIR), or --api ADDR with WSIS_API_TOKEN"
                        .into(),
                ))
            }
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            .timeout(Duration::from_secs(600))
            .build();
        Ok(Client {
            base: format!("http://{addr}"),
            token,
            agent,
        })
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        let req = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        self.finish(path, req.call())
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        let req = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        self.finish(path, req.send_json(body))
    }

    fn finish<T: DeserializeOwned>(
        &self,
        path: &str,
        result: Result<ureq::Response, ureq::Error>,
    ) -> Result<T, Failure> {
        match result {
            Ok(resp) => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(
                    &mut std::io::Read::take(resp.into_reader(), MAX_RESPONSE_BYTES),
                    &mut bytes,
                )
                .map_err(|e| {
                    Failure::Failed(format!("reading the node's answer to {path}: {e}"))
                })?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    Failure::Failed(format!(
                        "the node's answer to {path} is not what this wsis expects: {e}"
                    ))
                })
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body: Option<ErrorBody> = resp.into_json().ok();
                let msg =
                    body.map_or_else(|| format!("the node answered HTTP {code}"), |b| b.error);
                if code == 400 {
                    Err(Failure::Usage(msg))
                } else {
                    Err(Failure::Failed(msg))
                }
            }
            Err(ureq::Error::Transport(t)) => Err(Failure::Failed(format!(
                "no node answers at {} ({}): is `wsis node` running for this data directory?",
                self.base,
                t.kind()
            ))),
        }
    }
}
