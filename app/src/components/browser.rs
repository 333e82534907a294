//! The few browser facilities the screens use directly: the authorization
//! popup, the clipboard and messages from the OAuth callback page. Each is a
//! no-op outside the browser.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

/// A window opened for a provider's authorization page.
pub struct Popup(web_sys::Window);

impl Popup {
    /// Opens an empty popup now, while the click still counts as the
    /// person's gesture (browsers block popups opened later), so the link
    /// can be loaded into it when the server has made it. `None` when the
    /// browser blocked it.
    pub fn open_blank() -> Option<Popup> {
        let features = "popup=yes,width=560,height=760";
        window()
            .open_with_url_and_target_and_features("", "quiver-oauth", features)
            .ok()
            .flatten()
            .map(Popup)
    }

    /// Loads the provider's page into the popup.
    pub fn go(&self, url: &str) -> bool {
        self.0.location().set_href(url).is_ok()
    }

    /// Closes it (nothing to authorize after all).
    pub fn close(&self) {
        let _ = self.0.close();
    }
}

/// Copies text to the clipboard; `false` when the browser refused at once.
pub fn copy_to_clipboard(text: &str) -> bool {
    let promise = window().navigator().clipboard().write_text(text);
    // A refusal rejects the promise; the caller reports success optimistically
    // only when the API exists at all.
    !promise.is_undefined()
}

/// The token id of a `quiver-oauth-callback` message from this origin's
/// callback page, if the event is one.
pub fn callback_token_id(event: &web_sys::MessageEvent) -> Option<String> {
    let origin = window().location().origin().ok()?;
    if event.origin() != origin {
        return None;
    }
    let data = event.data();
    let field = |name: &str| {
        js_sys::Reflect::get(&data, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
    };
    (field("type").as_deref() == Some("quiver-oauth-callback"))
        .then(|| field("token_id"))
        .flatten()
}
