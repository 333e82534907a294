//! The HTTP client for provider calls: rustls, no redirects, connect and
//! total timeouts, responses over 1 MiB refused, and a resolver that
//! refuses link-local and metadata addresses after DNS resolution.
//!
//! Proxy environment variables (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`,
//! lowercase too) are ignored: a proxy would resolve provider names itself,
//! out of the resolver's reach. `QUIVER_OUTBOUND_PROXY` sends every provider
//! call through one proxy instead; URLs and literal addresses are still
//! checked then, but the proxy resolves names, so what a name leads to is
//! the proxy's to police.
//!
//! A provider that refuses the connection, resets it or does not answer in
//! time gets one message, "could not reach HOST: no answer", so that errors
//! never tell whether a port behind it is open (the cause goes to the log).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use crate::secret::SecretString;

use super::url_policy::is_forbidden;

/// Largest response body accepted from a provider.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why a provider call did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL, or every address its name resolves to, was refused before
    /// any connection; or the name has no address.
    #[error("refused URL: {0}")]
    Refused(String),
    /// The connection was refused or reset, or no complete answer came
    /// within the timeouts: one message for all, whatever the cause.
    #[error("could not reach {host}: no answer")]
    Unreachable {
        /// Host and port as the URL names them.
        host: String,
    },
    /// The answer was larger than 1 MiB.
    #[error("the answer is larger than 1 MiB")]
    TooLarge,
    /// The request could not be built.
    #[error("request failed: {0}")]
    Other(String),
}

/// A client authentication's `Authorization` value as a header, marked
/// sensitive so that HTTP debugging never shows the credentials.
pub fn authorization_header(value: &SecretString) -> Result<HeaderValue, OutboundError> {
    let mut header = HeaderValue::from_str(value.expose())
        .map_err(|_| OutboundError::Other("invalid Authorization header".into()))?;
    header.set_sensitive(true);
    Ok(header)
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

/// `QUIVER_OUTBOUND_PROXY`: the proxy every provider call goes through.
/// Its `Debug` and `Display` hide a password in the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboundProxy(Url);

impl OutboundProxy {
    /// Parses an `http://` or `https://` proxy URL (credentials allowed).
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = Url::parse(text.trim()).map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("must start with http:// or https:// (the proxy's own address)".into());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("has no host".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err("must be only a scheme, host and port (no path or query)".into());
        }
        reqwest::Proxy::all(url.as_str()).map_err(|e| format!("is not usable as a proxy ({e})"))?;
        Ok(Self(url))
    }

    fn proxy(&self) -> reqwest::Proxy {
        reqwest::Proxy::all(self.0.as_str()).expect("checked when the setting was read")
    }
}

impl fmt::Display for OutboundProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("redacted"));
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for OutboundProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutboundProxy({self})")
    }
}

/// A name refused by the resolver: its message is the one shown.
#[derive(Debug)]
struct NameRefused(String);

impl fmt::Display for NameRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameRefused {}

/// A resolver that drops forbidden addresses and fails when none is left.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), 0)).await {
                Ok(found) => found.collect(),
                Err(e) => {
                    tracing::debug!(host = %host, error = %e, "provider name did not resolve");
                    Vec::new()
                }
            };
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
        return Err(Box::new(NameRefused(message)));
    }
    Ok(allowed)
}

/// How every provider call leaves: through a proxy or direct, and which
/// certificate authorities it trusts besides the usual web ones (an internal
/// identity provider's private CA).
#[derive(Clone, Default)]
pub struct Outbound {
    /// The proxy, if any.
    pub proxy: Option<OutboundProxy>,
    /// Extra trusted roots (`QUIVER_OUTBOUND_CA_FILE`).
    pub roots: Vec<reqwest::Certificate>,
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbound")
            .field("proxy", &self.proxy)
            .field("extra_roots", &self.roots.len())
            .finish()
    }
}

impl Outbound {
    /// Directly, trusting the web's usual authorities only.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Reads a PEM file of trusted roots; every certificate in it is added.
    pub fn read_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
        let pem =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "{} is not a PEM bundle of certificates: {e}",
                path.display()
            )
        })?;
        if roots.is_empty() {
            return Err(format!("{} holds no certificate", path.display()));
        }
        Ok(roots)
    }
}

/// The certificate and key a client presents in the TLS handshake (mutual
/// TLS, RFC 8705).
pub struct TlsIdentity {
    /// Names the identity among the built clients (provider and thumbprint).
    pub name: String,
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// The private key (PKCS#8 PEM).
    pub key_pem: SecretString,
}

type ClientKey = (u64, u64, Option<String>);

/// Clients by (connect, total) timeout in ms and TLS identity, built once,
/// so that connections to a provider are kept alive and reused between
/// calls.
#[derive(Default)]
pub struct Clients {
    outbound: Outbound,
    built: std::sync::Mutex<std::collections::HashMap<ClientKey, reqwest::Client>>,
}

impl Clients {
    /// Clients that leave as `outbound` says.
    pub fn new(outbound: Outbound) -> Self {
        Self {
            outbound,
            built: Default::default(),
        }
    }

    /// The client for these timeouts.
    pub fn get(&self, connect_ms: u64, total_ms: u64) -> reqwest::Client {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((connect_ms, total_ms, None))
            .or_insert_with(|| {
                client(
                    Duration::from_millis(connect_ms),
                    Duration::from_millis(total_ms),
                    &self.outbound,
                    None,
                )
            })
            .clone()
    }

    /// The client for these timeouts that presents `identity`. An identity
    /// that cannot be used (a key rustls does not take) gives a client
    /// without one: the provider then refuses the client, and says so.
    pub fn with_identity(
        &self,
        connect_ms: u64,
        total_ms: u64,
        identity: &TlsIdentity,
    ) -> reqwest::Client {
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((connect_ms, total_ms, Some(identity.name.clone())))
            .or_insert_with(|| {
                let mut pem = identity.certificate_pem.clone().into_bytes();
                pem.push(b'\n');
                pem.extend_from_slice(identity.key_pem.expose().as_bytes());
                let tls = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| {
                        tracing::warn!(identity = %identity.name, error = %e, "the client certificate cannot be used for mutual TLS");
                    })
                    .ok();
                client(
                    Duration::from_millis(connect_ms),
                    Duration::from_millis(total_ms),
                    &self.outbound,
                    tls,
                )
            })
            .clone()
    }
}

/// Builds the client for one provider's timeouts: direct (whatever the
/// proxy environment variables say), or through the proxy; trusting the
/// extra roots; presenting `identity` when given.
pub fn client(
    connect_timeout: Duration,
    timeout: Duration,
    outbound: &Outbound,
    identity: Option<reqwest::Identity>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .dns_resolver(Arc::new(GuardedResolver))
        .user_agent(concat!("Quiver/", env!("CARGO_PKG_VERSION")));
    for root in &outbound.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    match &outbound.proxy {
        Some(proxy) => builder.proxy(proxy.proxy()),
        None => builder.no_proxy(),
    }
    .build()
    .expect("a reqwest client with rustls always builds")
}

/// Host and port as the URL names them, for messages.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// Sends a request and reads at most 1 MiB of the answer.
pub async fn send(
    client: &reqwest::Client,
    request: reqwest::Request,
) -> Result<RawResponse, OutboundError> {
    // Literal addresses never pass through the resolver: check them here.
    let literal = match request.url().host() {
        Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
        _ => None,
    };
    if literal.is_some_and(is_forbidden) {
        return Err(OutboundError::Refused(format!(
            "{} is a link-local, site-local or metadata address (or an IPv6 address carrying one)",
            request.url().host_str().unwrap_or_default()
        )));
    }
    let host = authority(request.url());
    let classify = |e: reqwest::Error| classify(&host, e);
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

/// A transport failure as shown: the resolver's refusal in its own words,
/// anything else (refused, reset, timed out, not HTTP) as "no answer".
fn classify(host: &str, error: reqwest::Error) -> OutboundError {
    if error.is_builder() {
        return OutboundError::Other(root_cause(&error));
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<NameRefused>() {
            return OutboundError::Refused(refused.0.clone());
        }
        current = e.source();
    }
    tracing::info!(
        host = %host,
        timeout = error.is_timeout(),
        error = %root_cause(&error),
        "a provider did not answer"
    );
    OutboundError::Unreachable {
        host: host.to_owned(),
    }
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
        let err = allowed_addresses(
            "evil.example",
            addrs(&["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "fec0::1"]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("metadata"));
        // Mixed answers keep only the safe addresses.
        let kept =
            allowed_addresses("mixed.example", addrs(&["169.254.169.254", "203.0.113.7"])).unwrap();
        assert_eq!(kept, addrs(&["203.0.113.7"]));
        assert!(allowed_addresses("none.example", vec![]).is_err());
    }

    #[tokio::test]
    async fn a_literal_metadata_address_is_refused_before_connecting() {
        let client = client(
            Duration::from_secs(1),
            Duration::from_secs(1),
            &Outbound::direct(),
            None,
        );
        for url in [
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
            "http://[fec0::1]/",
        ] {
            let request = client.get(url).build().unwrap();
            assert!(
                matches!(send(&client, request).await, Err(OutboundError::Refused(_))),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn a_name_without_an_address_is_refused_in_the_resolvers_words() {
        let client = client(
            Duration::from_secs(5),
            Duration::from_secs(5),
            &Outbound::direct(),
            None,
        );
        let request = client.get("http://quiver-test.invalid/").build().unwrap();
        match send(&client, request).await {
            Err(OutboundError::Refused(message)) => {
                assert!(message.contains("has no address"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}
