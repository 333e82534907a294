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

/// Offers `content` to the person as a file download named `file_name`.
pub fn download(file_name: &str, content: &str) -> Result<(), String> {
    use wasm_bindgen::JsCast;
    let parts = js_sys::Array::of1(&JsValue::from_str(content));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| "the browser could not hold the file".to_owned())?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)
        .map_err(|_| "the browser could not offer the file".to_owned())?;
    let anchor = document()
        .create_element("a")
        .map_err(|_| "the browser could not offer the file".to_owned())?
        .unchecked_into::<web_sys::HtmlAnchorElement>();
    anchor.set_href(&url);
    anchor.set_download(file_name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// The text of the file chosen in the file input `input_id`; `None` when
/// none is chosen.
pub async fn chosen_file_text(input_id: &str) -> Result<Option<(String, String)>, String> {
    use wasm_bindgen::JsCast;
    let Some(input) = document()
        .get_element_by_id(input_id)
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return Ok(None);
    };
    let Some(file) = input.files().and_then(|files| files.get(0)) else {
        return Ok(None);
    };
    let name = file.name();
    let text = wasm_bindgen_futures::JsFuture::from(file.text())
        .await
        .map_err(|_| format!("the browser could not read {name}"))?
        .as_string()
        .ok_or_else(|| format!("{name} is not a text file"))?;
    Ok(Some((name, text)))
}

/// A random id for following a long operation.
pub fn random_id() -> String {
    (0..4)
        .map(|_| {
            format!(
                "{:06x}",
                (js_sys::Math::random() * f64::from(0xff_ffff)) as u32
            )
        })
        .collect()
}
