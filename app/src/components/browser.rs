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

/// A copy of the file chosen in the file input `input_id`, held by the
/// browser (not in the page's memory): the name and the bytes as they were
/// when read, so that what is sent later is what was read now even if the
/// file changes on disk. `None` when no file is chosen.
pub async fn chosen_file_snapshot(
    input_id: &str,
) -> Result<Option<(String, web_sys::Blob)>, String> {
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
    let bytes = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| format!("the browser could not read {name}"))?;
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let copy = web_sys::Blob::new_with_buffer_source_sequence_and_options(
        &js_sys::Array::of1(&bytes),
        &options,
    )
    .map_err(|_| format!("the browser could not hold {name}"))?;
    Ok(Some((name, copy)))
}

/// A file upload (`multipart/form-data`): the text `fields` in order, then
/// `file` under `file_field`. The browser streams the file from its own
/// memory as it sends the request.
pub fn upload_form(
    fields: &[(&str, &str)],
    file_field: &str,
    (file_name, file): &(String, web_sys::Blob),
) -> Result<web_sys::FormData, String> {
    let failed = |_| "the browser could not prepare the upload".to_owned();
    let form = web_sys::FormData::new().map_err(failed)?;
    for (name, value) in fields {
        form.append_with_str(name, value).map_err(failed)?;
    }
    form.append_with_blob_and_filename(file_field, file, file_name)
        .map_err(failed)?;
    Ok(form)
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
