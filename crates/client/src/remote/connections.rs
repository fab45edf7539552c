//! The servers a client talks to, and their connections, which any number of clients can
//! share.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use kvraft_proto::v1::kv_service_client::KvServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::remote::error::{describe_error, ClientError};
use crate::remote::frames::FramesChannel;
use crate::remote::options::{ClientOptions, Transport};

/// The most endpoints a client keeps, its configured ones and those learned from leader hints.
pub const MAX_ENDPOINTS: usize = 64;

/// Normalizes an endpoint to `host:port`: trims it, drops an `http://` prefix and a trailing
/// `/`, and checks that a host and a non-zero port are there.
pub fn parse_address(endpoint: &str) -> Result<String, ClientError> {
    let bad = |reason: &str| ClientError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let text = endpoint.trim();
    if text.starts_with("https://") {
        return Err(bad("TLS is not supported; use host:port"));
    }
    let text = text.strip_prefix("http://").unwrap_or(text);
    let text = text.strip_suffix('/').unwrap_or(text);
    if text.contains('/') || text.contains(char::is_whitespace) {
        return Err(bad("expected host:port"));
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(bad("expected host:port"));
    };
    if host.is_empty() {
        return Err(bad("missing host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok(text.to_string()),
        _ => Err(bad("the port must be 1..=65535")),
    }
}

/// One server's connection, over the transport chosen once for the client.
#[derive(Debug, Clone)]
pub(crate) enum ServerChannel {
    /// Client frames: one connection, shared by every call and every client sharing it.
    Frames(Arc<FramesChannel>),
    /// gRPC: a tonic channel, created on first use and then shared.
    Grpc(Arc<GrpcChannel>),
}

/// A gRPC endpoint and its channel, connected on first use.
#[derive(Debug)]
pub(crate) struct GrpcChannel {
    endpoint: Endpoint,
    channel: OnceLock<Channel>,
}

impl GrpcChannel {
    /// A client on the channel, connecting it lazily the first time.
    pub(crate) fn client(&self) -> KvServiceClient<Channel> {
        KvServiceClient::new(self.channel.get_or_init(|| self.endpoint.connect_lazy()).clone())
    }
}

/// One server a client may call.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    /// `host:port`.
    pub(crate) address: String,
    pub(crate) channel: ServerChannel,
}

impl Server {
    pub(crate) fn new(
        address: String,
        call_timeout: Duration,
        transport: Transport,
    ) -> Result<Server, ClientError> {
        let channel = match transport {
            Transport::Frames => {
                ServerChannel::Frames(Arc::new(FramesChannel::new(address.clone(), call_timeout)))
            }
            Transport::Grpc => ServerChannel::Grpc(Arc::new(GrpcChannel {
                endpoint: endpoint_of(&address, call_timeout)?,
                channel: OnceLock::new(),
            })),
        };
        Ok(Server { address, channel })
    }

    pub(crate) fn transport(&self) -> Transport {
        match self.channel {
            ServerChannel::Frames(_) => Transport::Frames,
            ServerChannel::Grpc(_) => Transport::Grpc,
        }
    }
}

pub(crate) fn endpoint_of(address: &str, timeout: Duration) -> Result<Endpoint, ClientError> {
    Endpoint::from_shared(format!("http://{address}"))
        .map(|e| e.connect_timeout(timeout).tcp_nodelay(true))
        .map_err(|e| ClientError::InvalidEndpoint {
            endpoint: address.to_string(),
            reason: describe_error(&e),
        })
}

/// One connection per configured endpoint, connected on first use, that any number of
/// [`Client`](crate::remote::Client)s can share (`Client::over`): many sessions multiplexed
/// over one connection per server, as a load generator or a proxy wants. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connections {
    pub(crate) servers: Arc<Vec<Server>>,
}

impl Connections {
    /// Checks `options` (endpoints and call timeout); connects lazily. Duplicate endpoints are
    /// dropped.
    pub fn new(options: &ClientOptions) -> Result<Connections, ClientError> {
        let mut addresses: Vec<String> = Vec::new();
        for e in &options.endpoints {
            let address = parse_address(e)?;
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        if addresses.is_empty() {
            return Err(ClientError::NoEndpoints);
        }
        if addresses.len() > MAX_ENDPOINTS {
            return Err(ClientError::InvalidEndpoint {
                endpoint: addresses[MAX_ENDPOINTS].clone(),
                reason: format!("at most {MAX_ENDPOINTS} endpoints"),
            });
        }
        if options.call_timeout.is_zero() {
            return Err(ClientError::InvalidOption("the call timeout must be positive".into()));
        }
        let servers = addresses
            .into_iter()
            .map(|a| Server::new(a, options.call_timeout, options.transport))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Connections { servers: Arc::new(servers) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized_and_checked() {
        for (given, want) in [
            ("127.0.0.1:7001", "127.0.0.1:7001"),
            (" localhost:1 ", "localhost:1"),
            ("http://h:7001/", "h:7001"),
            ("[::1]:7001", "[::1]:7001"),
        ] {
            assert_eq!(parse_address(given).unwrap(), want, "{given}");
        }
        for (given, why) in [
            ("h", "host:port"),
            (":7001", "missing host"),
            ("h:0", "port"),
            ("h:99999", "port"),
            ("h:x", "port"),
            ("https://h:1", "TLS"),
            ("http://h:1/path", "host:port"),
            ("a b:1", "host:port"),
        ] {
            let err = parse_address(given).unwrap_err().to_string();
            assert!(err.contains(why), "{given}: {err}");
        }
    }

    #[test]
    fn options_are_checked() {
        let options = ClientOptions::default();
        assert_eq!(Connections::new(&options).unwrap_err(), ClientError::NoEndpoints);
        let c = Connections::new(&ClientOptions::new(["h:1", "http://h:1", "g:2"])).unwrap();
        let addresses: Vec<&str> = c.servers.iter().map(|s| s.address.as_str()).collect();
        assert_eq!(addresses, ["h:1", "g:2"]);
        assert!(matches!(
            Connections::new(&ClientOptions::new(["h"])),
            Err(ClientError::InvalidEndpoint { .. })
        ));
        let mut zero = ClientOptions::new(["h:1"]);
        zero.call_timeout = Duration::ZERO;
        assert!(matches!(Connections::new(&zero), Err(ClientError::InvalidOption(_))));
    }
}
