//! id_tokens made for tests: signed with the test authorization server's
//! own key, and read without checking.

use serde_json::{Value, json};

/// Signs `claims` as an id_token with the test server's own ES256 key
/// (`end2end/authserver/test-signing-keys.json`, published in its JWKS), as
/// a provider whose answers were tampered with, or a mixed-up one, would.
pub fn sign_id_token(claims: &Value) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../end2end/authserver/test-signing-keys.json"
    );
    let keys: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "EC")
        .unwrap();
    let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
    let mut public = vec![4u8];
    public.extend(part("x"));
    public.extend(part("y"));
    let rng = ring::rand::SystemRandom::new();
    let pair = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &part("d"),
        &public,
        &rng,
    )
    .unwrap();
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": jwk["kid"]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = pair.sign(&rng, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// The claims of a JWT, unverified (for tests that build on a real one).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
