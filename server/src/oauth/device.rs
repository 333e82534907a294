//! The Device Authorization Grant (RFC 8628): asking the provider for a
//! device code (the `oauth2` crate's request), and the grant Quiver polls
//! the token endpoint with.

use chrono::Duration;
use oauth2::{DeviceAuthorizationUrl, EmptyExtraDeviceAuthorizationFields};
use serde_json::Value;
use url::Url;

use super::client_auth::ClientAuth;
use super::grant::{self, Form, GrantError};
use super::token_response::{self, ProviderFault, ResponseShape};
use super::transport::{self, Transport};
use crate::secret::SecretString;

/// The `grant_type` of the polls.
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Seconds between polls when the provider does not say (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: i64 = 5;

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_SECS: i64 = 5;

/// The provider's answer to a device authorization request.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    /// The code Quiver polls with (a credential: sealed when stored).
    pub device_code: SecretString,
    /// The code the person types.
    pub user_code: String,
    /// Where the person types it.
    pub verification_uri: String,
    /// The same page with the code filled in, when given.
    pub verification_uri_complete: Option<String>,
    /// How long the codes last.
    pub expires_in: Duration,
    /// Seconds between polls.
    pub interval_secs: i64,
}

/// Longest text kept from the answer, in bytes.
const MAX_FIELD_BYTES: usize = 2_048;

/// Asks `url` for a device code with `request` (scope, resource, extra
/// parameters), authenticated as `auth` says.
pub async fn request(
    client: &reqwest::Client,
    url: &Url,
    auth: &ClientAuth,
    request: Form,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DeviceCode, GrantError> {
    let (oauth, auth_extra) = grant::crate_client(auth, now)?;
    let oauth = oauth.set_device_authorization_url(DeviceAuthorizationUrl::from_url(url.clone()));
    // Scope goes as Quiver joins it (some providers want commas).
    let mut device = oauth.exchange_device_code();
    for (k, v) in request.into_iter().chain(auth_extra) {
        device = device.add_extra_param(k, v);
    }
    let transport = Transport::new(client);
    let result = device
        .request_async::<_, EmptyExtraDeviceAuthorizationFields>(&transport)
        .await;
    let raw = transport::outcome(&transport, result)?;
    read(raw.status, &raw.body)
}

/// Reads the answer: the codes and where to use them, else the provider's
/// OAuth error. `verification_url` (Google's spelling) is read too.
pub fn read(status: u16, body: &[u8]) -> Result<DeviceCode, GrantError> {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= MAX_FIELD_BYTES)
            .map(str::to_owned)
    };
    let number = |key: &str| {
        value.as_ref().and_then(|v| v.get(key)).and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        })
    };
    // A page a person opens: https, or plain http only on this machine.
    let https_or_loopback = |u: &String| {
        Url::parse(u).is_ok_and(|u| {
            u.scheme() == "https"
                || (u.scheme() == "http" && super::url_policy::is_loopback_host(&u))
        })
    };
    let device_code = text("device_code");
    let user_code = text("user_code");
    let verification_uri = text("verification_uri")
        .or_else(|| text("verification_url"))
        .filter(https_or_loopback);
    match (device_code, user_code, verification_uri) {
        (Some(device_code), Some(user_code), Some(verification_uri))
            if (200..300).contains(&status) =>
        {
            Ok(DeviceCode {
                device_code: SecretString::new(device_code),
                user_code,
                verification_uri,
                verification_uri_complete: text("verification_uri_complete")
                    .filter(https_or_loopback),
                expires_in: Duration::seconds(
                    number("expires_in")
                        .filter(|s| *s > 0)
                        .unwrap_or(600)
                        .min(86_400),
                ),
                interval_secs: number("interval")
                    .filter(|s| *s > 0)
                    .unwrap_or(DEFAULT_INTERVAL_SECS)
                    .min(3_600),
            })
        }
        _ => Err(
            match token_response::parse(status, body, ResponseShape::default()) {
                Err(fault) => fault,
                Ok(_) => ProviderFault::Malformed {
                    http_status: status,
                    reason: "a device authorization answer without device_code, user_code and verification_uri".into(),
                },
            }
            .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_rfc_8628_says() {
        let d = read(
            200,
            br#"{"device_code":"dc","user_code":"WDJB-MJHT","verification_uri":"https://as.example/device","verification_uri_complete":"https://as.example/device?user_code=WDJB-MJHT","expires_in":1800,"interval":5}"#,
        )
        .unwrap();
        assert_eq!(d.device_code.expose(), "dc");
        assert_eq!(d.user_code, "WDJB-MJHT");
        assert_eq!(d.expires_in, Duration::seconds(1800));
        assert_eq!(d.interval_secs, 5);
        assert!(d.verification_uri_complete.is_some());
        // Google's spelling; no interval means five seconds.
        let d = read(
            200,
            br#"{"device_code":"dc","user_code":"X","verification_url":"https://www.google.com/device","expires_in":"1800"}"#,
        )
        .unwrap();
        assert_eq!(d.verification_uri, "https://www.google.com/device");
        assert_eq!(d.interval_secs, DEFAULT_INTERVAL_SECS);
        // A link that is not a web page is not shown.
        let d = read(
            200,
            br#"{"device_code":"dc","user_code":"X","verification_uri":"https://as.example/d","verification_uri_complete":"javascript:alert(1)"}"#,
        )
        .unwrap();
        assert!(d.verification_uri_complete.is_none());
        assert!(
            read(
                200,
                br#"{"device_code":"dc","user_code":"X","verification_uri":"javascript:x"}"#
            )
            .is_err()
        );
        // Plain http only on this machine: a page elsewhere could be read
        // or changed on the way.
        assert!(
            read(
                200,
                br#"{"device_code":"dc","user_code":"X","verification_uri":"http://as.example/d"}"#
            )
            .is_err()
        );
        let d = read(
            200,
            br#"{"device_code":"dc","user_code":"X","verification_uri":"http://127.0.0.1:4000/d","verification_uri_complete":"http://as.example/d?u=X"}"#,
        )
        .unwrap();
        assert_eq!(d.verification_uri, "http://127.0.0.1:4000/d");
        assert!(d.verification_uri_complete.is_none());
        let e = read(400, br#"{"error":"invalid_client"}"#).unwrap_err();
        assert_eq!(e.to_string(), "invalid_client");
    }

    #[test]
    fn the_device_code_never_shows_in_debug() {
        let d = read(
            200,
            br#"{"device_code":"super-secret-device","user_code":"X","verification_uri":"https://as.example/d"}"#,
        )
        .unwrap();
        assert!(!format!("{d:?}").contains("super-secret"));
    }
}
