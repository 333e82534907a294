//! Talking to OAuth providers: which URLs and addresses may be reached,
//! the outbound HTTP client, token responses as providers really send
//! them, client authentication (with keys and their certificates), the
//! grants, and the extra parameters requests may carry.

pub mod certificate;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod grant;
pub mod id_token;
pub mod outbound;
pub mod params;
pub mod pushed;
pub mod signing_key;
pub mod token_response;
pub mod transport;
pub mod url_policy;
