//! The etcd driver (cargo feature `etcd-client`): the same load through the `etcd-client` crate.
//!
//! One `etcd_client::Client` per `--connections`, each a tonic channel balanced over every
//! endpoint (one HTTP/2 connection per member), shared round-robin by the bench clients
//! exactly as the kvraft driver shares its channels. Put and append are etcd `Put`s (etcd has no
//! append: an append writes the value); get is a `Range` of one key with the default
//! `serializable = false`, i.e. linearizable. The crate does not retry; a failed request
//! counts as an error.

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, KvClient};

use crate::driver::{Driver, Session};
use crate::workload::OpKind;

pub struct EtcdDriver {
    clients: Vec<Client>,
    op_timeout: Duration,
}

impl std::fmt::Debug for EtcdDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDriver")
            .field("connections", &self.clients.len())
            .field("op_timeout", &self.op_timeout)
            .finish()
    }
}

impl EtcdDriver {
    /// Opens `connections` clients to `endpoints` (`host:port`, or with `http://`).
    pub async fn connect(
        endpoints: &[String],
        connections: usize,
        call_timeout: Duration,
        op_timeout: Duration,
    ) -> Result<EtcdDriver, String> {
        let urls: Vec<String> = endpoints
            .iter()
            .map(|e| {
                let e = e.trim();
                if e.contains("://") {
                    e.to_string()
                } else {
                    format!("http://{e}")
                }
            })
            .collect();
        let options =
            ConnectOptions::new().with_timeout(call_timeout).with_connect_timeout(call_timeout);
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            let client = Client::connect(&urls, Some(options.clone()))
                .await
                .map_err(|e| format!("cannot connect to etcd at {}: {e}", urls.join(",")))?;
            clients.push(client);
        }
        Ok(EtcdDriver { clients, op_timeout })
    }
}

impl Driver for EtcdDriver {
    type Session = EtcdSession;

    fn session(&self, index: usize) -> EtcdSession {
        EtcdSession {
            kv: self.clients[index % self.clients.len()].kv_client(),
            op_timeout: self.op_timeout,
        }
    }
}

/// One bench client's handle on etcd (a clone of its connection's KV client).
pub struct EtcdSession {
    kv: KvClient,
    op_timeout: Duration,
}

impl std::fmt::Debug for EtcdSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdSession").field("op_timeout", &self.op_timeout).finish_non_exhaustive()
    }
}

impl Session for EtcdSession {
    async fn execute(&mut self, op: OpKind, key: &str, value: &str) -> Result<(), String> {
        let call = async {
            match op {
                OpKind::Put | OpKind::Append => self.kv.put(key, value, None).await.map(drop),
                OpKind::Get => self.kv.get(key, None).await.map(drop),
            }
        };
        match tokio::time::timeout(self.op_timeout, call).await {
            Ok(result) => result.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.op_timeout)),
        }
    }
}
