//! The HTTP client for provider calls: rustls, no redirects, connect and
//! total timeouts, responses over 1 MiB refused, and a resolver that
//! refuses link-local and metadata addresses after DNS resolution.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::HeaderMap;

use super::url_policy::is_forbidden;

/// Largest response body accepted from a provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a provider call did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL was refused before any connection.
    #[error("refused URL: {0}")]
    Refused(String),
    /// Connecting failed, or took longer than the connect timeout.
    #[error("could not connect: {0}")]
    Connect(String),
    /// No complete answer within the total timeout.
    #[error("no answer within {0} ms")]
    Timeout(u64),
    /// The answer was larger than 1 MiB.
    #[error("the answer is larger than 1 MiB")]
    TooLarge,
    /// Another transport failure.
    #[error("request failed: {0}")]
    Other(String),
}

/// A raw answer.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, at most 1 MiB.
    pub body: Vec<u8>,
}

/// A resolver that drops forbidden addresses and fails when none is left.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?
                .collect();
            let allowed = allowed_addresses(&host, found)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The resolved addresses Quiver may connect to; an error when none is left.
pub fn allowed_addresses(
    host: &str,
    found: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| !is_forbidden(a.ip()))
        .collect();
    if allowed.is_empty() {
        let message = if found.is_empty() {
            format!("{host} has no address")
        } else {
            format!(
                "{host} resolves only to link-local or metadata addresses, which Quiver never contacts"
            )
        };
        return Err(message.into());
    }
    Ok(allowed)
}

/// Clients by (connect, total) timeout in ms, built once, so that
/// connections to a provider are kept alive and reused between calls.
#[derive(Default)]
pub struct Clients(std::sync::Mutex<std::collections::HashMap<(u64, u64), reqwest::Client>>);

impl Clients {
    /// The client for these timeouts.
    pub fn get(&self, connect_ms: u64, total_ms: u64) -> reqwest::Client {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((connect_ms, total_ms))
            .or_insert_with(|| {
                client(
                    Duration::from_millis(connect_ms),
                    Duration::from_millis(total_ms),
                )
            })
            .clone()
    }
}

/// Builds the client for one provider's timeouts.
pub fn client(connect_timeout: Duration, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .dns_resolver(Arc::new(GuardedResolver))
        .user_agent(concat!("Quiver/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a reqwest client with rustls always builds")
}

/// Sends a request and reads at most 1 MiB of the answer.
pub async fn send(
    client: &reqwest::Client,
    request: reqwest::Request,
    timeout_ms: u64,
) -> Result<RawResponse, OutboundError> {
    // Literal addresses never pass through the resolver: check them here.
    let literal = match request.url().host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(is_forbidden) {
        return Err(OutboundError::Refused(format!(
            "{} is a link-local or metadata address",
            request.url().host_str().unwrap_or_default()
        )));
    }
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            OutboundError::Timeout(timeout_ms)
        } else if e.is_connect() {
            OutboundError::Connect(root_cause(&e))
        } else {
            OutboundError::Other(root_cause(&e))
        }
    };
    let mut response = client.execute(request).await.map_err(classify)?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    if response
        .content_length()
        .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
    {
        return Err(OutboundError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(OutboundError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// The innermost cause's message: the useful part of a reqwest error.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| SocketAddr::new(a.parse().unwrap(), 443))
            .collect()
    }

    #[test]
    fn a_name_resolving_to_metadata_addresses_is_refused() {
        let err = allowed_addresses("evil.example", addrs(&["169.254.169.254", "fd00:ec2::254"]))
            .unwrap_err();
        assert!(err.to_string().contains("link-local or metadata"), "{err}");
        let err =
            allowed_addresses("evil.example", addrs(&["::ffff:169.254.169.254"])).unwrap_err();
        assert!(err.to_string().contains("metadata"));
        // Mixed answers keep only the safe addresses.
        let kept =
            allowed_addresses("mixed.example", addrs(&["169.254.169.254", "203.0.113.7"])).unwrap();
        assert_eq!(kept, addrs(&["203.0.113.7"]));
        assert!(allowed_addresses("none.example", vec![]).is_err());
    }

    #[tokio::test]
    async fn a_literal_metadata_address_is_refused_before_connecting() {
        let client = client(Duration::from_secs(1), Duration::from_secs(1));
        let request = client
            .get("http://169.254.169.254/latest/meta-data")
            .build()
            .unwrap();
        assert!(matches!(
            send(&client, request, 1000).await,
            Err(OutboundError::Refused(_))
        ));
        let request = client
            .get("http://[::ffff:169.254.169.254]/")
            .build()
            .unwrap();
        assert!(matches!(
            send(&client, request, 1000).await,
            Err(OutboundError::Refused(_))
        ));
    }
}
