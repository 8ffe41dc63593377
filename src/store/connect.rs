//! Making the connection `[store]` describes: one endpoint (a server, or a proxy in front of a
//! cluster) or a Redis Cluster in direct mode, each plain (`redis://`) or over TLS (`rediss://`).
//!
//! TLS is rustls with the public roots compiled in; `tls_ca_file` adds a CA to them. The
//! certificate chain and the host name are always verified: there is no switch to turn that off.

use std::path::Path;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// How a cluster client follows `MOVED`/`ASK` and retries a node: a few quick tries, so that a
/// resharding cluster is followed but a storm of redirects fails within the operation budget.
const CLUSTER_RETRIES: u32 = 3;
const CLUSTER_RETRY_WAIT_MS: (u64, u64) = (10, 100);

/// The client `[store]` describes; connects nothing yet. (One per process: its size is no
/// concern, hence no box.)
#[allow(clippy::large_enum_variant)]
pub enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A live connection of either kind; clones share it.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Timeouts for dialling and for one command.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub response: Duration,
}

impl Client {
    /// A client for `url`; `ca_pem` (the CA file's contents) is trusted besides the public roots.
    pub fn new(url: &str, ca_pem: Option<&[u8]>, cluster: bool, timeouts: Timeouts) -> RedisResult<Client> {
        let certificates =
            ca_pem.map(|pem| TlsCertificates { client_tls: None, root_cert: Some(trust_bundle(pem)) });
        if cluster {
            let mut builder = ClusterClientBuilder::new(vec![url])
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(CLUSTER_RETRY_WAIT_MS.0)
                .max_retry_wait(CLUSTER_RETRY_WAIT_MS.1)
                .connection_timeout(timeouts.connect)
                .response_timeout(timeouts.response);
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            return Ok(Client::Cluster(builder.build()?));
        }
        Ok(Client::Single(match certificates {
            Some(certificates) => redis::Client::build_with_tls(url, certificates)?,
            None => redis::Client::open(url)?,
        }))
    }

    /// The password as the library decoded it from the URL (percent-escapes resolved): what it
    /// could ever print, so what messages must hide.
    pub fn password(&self, url: &str) -> Option<String> {
        match self {
            Client::Single(c) => c.get_connection_info().redis_settings().password().map(str::to_owned),
            Client::Cluster(_) => redis::IntoConnectionInfo::into_connection_info(url)
                .ok()
                .and_then(|info| info.redis_settings().password().map(str::to_owned)),
        }
    }

    /// Connects: lazily for one endpoint (the first command dials), at once for a cluster (the
    /// slot map is read now).
    pub async fn connect(&self, timeouts: Timeouts) -> RedisResult<Connection> {
        match self {
            Client::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeouts.connect))
                    .set_response_timeout(Some(timeouts.response))
                    // No backoff loop inside one call: while Redis is down each call fails
                    // fast and triggers the next reconnection attempt itself.
                    .set_number_of_retries(0);
                Ok(Connection::Single(ConnectionManager::new_lazy_with_config(client.clone(), config)?))
            }
            Client::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeouts.connect)
                    .set_response_timeout(timeouts.response);
                Ok(Connection::Cluster(client.get_async_connection_with_config(config).await?))
            }
        }
    }
}

/// The CA file's certificates followed by the public roots, as one PEM bundle: the library
/// trusts only the bundle it is given, and `tls_ca_file` adds to the public roots.
fn trust_bundle(ca_pem: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let mut bundle = ca_pem.to_vec();
    bundle.push(b'\n');
    for root in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        let text = base64::engine::general_purpose::STANDARD.encode(root.as_ref());
        bundle.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in text.as_bytes().chunks(64) {
            bundle.extend_from_slice(line);
            bundle.push(b'\n');
        }
        bundle.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    bundle
}

/// Reads `tls_ca_file` and checks that it holds at least one certificate usable as a trust
/// anchor. The error names the file and says what is wrong with it.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let certificates: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{shown} is not PEM: {e}"))?;
    if certificates.is_empty() {
        return Err(format!("{shown} holds no \"-----BEGIN CERTIFICATE-----\" block"));
    }
    let mut roots = rustls::RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certificates);
    if unusable > 0 {
        return Err(format!("{shown}: {unusable} of its certificates do not parse as X.509"));
    }
    Ok(pem)
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_keeps_the_ca_and_adds_every_public_root() {
        let ca = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let bundle = trust_bundle(ca);
        assert!(bundle.starts_with(ca));
        let parsed: Vec<_> = CertificateDer::pem_slice_iter(&bundle[ca.len()..]).collect();
        assert_eq!(parsed.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
        assert!(parsed.iter().all(Result::is_ok));
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(read_ca_file(&missing).unwrap_err().contains("cannot read"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        assert!(read_ca_file(&empty).unwrap_err().contains("no \"-----BEGIN CERTIFICATE-----\" block"));
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        assert!(read_ca_file(&garbage).unwrap_err().contains("do not parse as X.509"));
    }
}
