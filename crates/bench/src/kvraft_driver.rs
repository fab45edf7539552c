//! The kvraft driver: the client library's [`Client`], one per bench client, over shared
//! connections.
//!
//! The bench opens `--connections` sets of [`Connections`] (one lazily connected connection
//! per server in each set) and gives bench client `i` set `i mod M`; several clients then
//! multiplex one connection per server (client frames on plain TCP by default, HTTP/2 with
//! `--transport grpc`). Each bench client is a `Client` with its own session, so it retries,
//! follows leader hints and renews expired sessions exactly as any kvraft client does.

use std::time::Duration;

use kvraft_client::{Client, ClientOptions, Connections, Transport};

use crate::driver::{Driver, Session};
use crate::options::ReadFrom;
use crate::workload::OpKind;

#[derive(Debug)]
pub struct KvraftDriver {
    options: ClientOptions,
    connections: Vec<Connections>,
    read_from: ReadFrom,
}

impl KvraftDriver {
    /// Sets up `connections` connection sets to `endpoints`; nothing connects until first use.
    pub fn new(
        endpoints: &[String],
        connections: usize,
        call_timeout: Duration,
        op_timeout: Duration,
        read_from: ReadFrom,
        transport: Transport,
    ) -> Result<KvraftDriver, String> {
        let options = ClientOptions {
            call_timeout,
            op_timeout: Some(op_timeout),
            transport,
            ..ClientOptions::new(endpoints.iter().cloned())
        };
        let connections = (0..connections.max(1))
            .map(|_| Connections::new(&options))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        Ok(KvraftDriver { options, connections, read_from })
    }
}

impl Driver for KvraftDriver {
    type Session = KvraftSession;

    fn session(&self, index: usize) -> KvraftSession {
        let connections = &self.connections[index % self.connections.len()];
        let mut client = Client::over(connections, &self.options);
        if self.read_from == ReadFrom::Spread {
            let endpoints: Vec<String> = client.endpoints().map(str::to_string).collect();
            client
                .read_from(&endpoints[index % endpoints.len()])
                .expect("one of the client's own endpoints");
        }
        KvraftSession { client }
    }
}

/// One bench client's kvraft session.
#[derive(Debug)]
pub struct KvraftSession {
    client: Client,
}

impl Session for KvraftSession {
    async fn execute(&mut self, op: OpKind, key: &str, value: &str) -> Result<(), String> {
        let result = match op {
            OpKind::Put => self.client.put(key, value).await,
            OpKind::Append => self.client.append(key, value).await,
            OpKind::Get => self.client.get(key).await.map(drop),
        };
        result.map_err(|e| e.to_string())
    }
}
