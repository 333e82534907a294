//! A device authorization in progress (RFC 8628): the code the person
//! types, where (a link and a QR code of the link with the code in it), and
//! how long the code lasts. The page around it polls the token; Quiver
//! polls the provider.

use std::time::Duration;

use leptos::prelude::*;

use crate::tokens::DeviceAuthorization;

/// Whole seconds from now to an RFC 3339 time, never negative.
fn seconds_left(at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
        .unwrap_or(0)
        .max(0)
}

/// The device code panel of a token waiting for its person.
#[component]
pub fn DeviceCodePanel(token_id: String, device: DeviceAuthorization) -> impl IntoView {
    let expires_at = device.expires_at.clone();
    let left = RwSignal::new(seconds_left(&expires_at));
    Effect::new(move |_| {
        let expires_at = expires_at.clone();
        if let Ok(handle) = set_interval_with_handle(
            move || left.set(seconds_left(&expires_at)),
            Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    let complete = device.verification_uri_complete.clone();
    let qr = format!("/api/v1/tokens/{token_id}/verification-qr");
    view! {
        <div class="alert alert-info device-code" role="status" data-testid="device-code">
            <strong>"Waiting for authorization on a device"</strong>
            <p>"On any device, open " <a href=device.verification_uri.clone() target="_blank" rel="noopener noreferrer"
                data-testid="verification-uri">{device.verification_uri.clone()}</a> " and enter this code:"</p>
            <p class="user-code" data-testid="user-code" aria-label="Code to enter">{device.user_code.clone()}</p>
            {complete.map(|url| view! {
                <p><a href=url.clone() target="_blank" rel="noopener noreferrer" data-testid="verification-uri-complete">
                    "Open the page with the code filled in"</a></p>
                <img class="qr" src=qr alt="QR code of the page with the code filled in" width="160" height="160"
                    data-testid="verification-qr" />
            })}
            <p data-testid="device-countdown">{move || {
                let s = left.get();
                if s == 0 {
                    "The code has expired: request the token again for a new one.".to_owned()
                } else {
                    format!("The code works for {} min {:02} s more. This updates by itself once approved.", s / 60, s % 60)
                }
            }}</p>
        </div>
    }
}
