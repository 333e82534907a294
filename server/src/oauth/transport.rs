//! The `oauth2` crate's HTTP client: Quiver's guarded outbound client (no
//! redirects, no forbidden addresses, at most 1 MiB read, the proxy and
//! extra roots, the mutual TLS identity), with the raw answer kept.
//!
//! The crate builds the requests; the answers are read by Quiver's own
//! reader ([`super::token_response`]) from the raw answer kept here,
//! because providers answer in shapes the crate's typed responses refuse
//! (a form-encoded body, the token nested under another member,
//! `expires_in` as a string or in milliseconds, a 201, extra fields to
//! keep), and because a refusal's `Retry-After` header matters to the
//! renewal's backoff and the crate does not pass headers on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use oauth2::{HttpRequest, HttpResponse};
use reqwest::header::AUTHORIZATION;

use super::outbound::{self, OutboundError, RawResponse};

/// One exchange with a provider through the `oauth2` crate.
pub struct Transport<'a> {
    /// The guarded client; none: answer `canned` (for tests of what the
    /// crate builds).
    client: Option<&'a reqwest::Client>,
    canned: Option<RawResponse>,
    sent: Mutex<Option<HttpRequest>>,
    answered: Mutex<Option<RawResponse>>,
    calls: AtomicUsize,
}

impl<'a> Transport<'a> {
    /// A transport over `client` that sends one request: a second one (the
    /// device flow's own polling loop) ends the exchange, since the
    /// scheduler decides when to poll again.
    pub fn new(client: &'a reqwest::Client) -> Self {
        Self {
            client: Some(client),
            canned: None,
            sent: Mutex::new(None),
            answered: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }

    /// A transport that sends nothing and answers `answer`: what the crate
    /// built can then be read with [`Transport::sent`].
    pub fn answering(answer: RawResponse) -> Self {
        Self {
            client: None,
            canned: Some(answer),
            sent: Mutex::new(None),
            answered: Mutex::new(None),
            calls: AtomicUsize::new(0),
        }
    }

    /// Whether a request went out.
    pub fn called(&self) -> bool {
        self.calls.load(Ordering::SeqCst) > 0
    }

    /// The request the crate built, once it was sent.
    pub fn sent(&self) -> Option<HttpRequest> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends the crate's request through the guarded client.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, OutboundError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(OutboundError::Other("one request per exchange".into()));
        }
        let raw = match (self.client, &self.canned) {
            (Some(client), _) => {
                let mut request = reqwest::Request::try_from(request).map_err(|e| {
                    OutboundError::Other(format!("the request could not be built: {e}"))
                })?;
                // Credentials never show in HTTP debugging.
                if let Some(value) = request.headers_mut().get_mut(AUTHORIZATION) {
                    value.set_sensitive(true);
                }
                outbound::send(client, request).await?
            }
            (None, canned) => {
                *self.sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(request);
                canned
                    .clone()
                    .ok_or_else(|| OutboundError::Other("no answer".into()))?
            }
        };
        let mut response = oauth2::http::Response::builder().status(raw.status);
        for (name, value) in &raw.headers {
            response = response.header(name, value);
        }
        let response = response
            .body(raw.body.clone())
            .map_err(|e| OutboundError::Other(e.to_string()))?;
        *self.answered.lock().unwrap_or_else(|e| e.into_inner()) = Some(raw);
        Ok(response)
    }

    /// The provider's raw answer, once there was one.
    pub fn answer(&self) -> Option<RawResponse> {
        self.answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for Transport<'_> {
    type Error = OutboundError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, OutboundError>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a finished exchange leaves: the raw answer, or why there was none.
pub fn outcome<T, E>(
    transport: &Transport<'_>,
    result: Result<T, oauth2::RequestTokenError<OutboundError, E>>,
) -> Result<RawResponse, OutboundError>
where
    E: oauth2::ErrorResponse + 'static,
{
    if let Some(raw) = transport.answer() {
        return Ok(raw);
    }
    match result {
        Err(oauth2::RequestTokenError::Request(e)) => Err(e),
        Err(oauth2::RequestTokenError::Other(e)) => Err(OutboundError::Other(e)),
        _ => Err(OutboundError::Other("the provider was not asked".into())),
    }
}
