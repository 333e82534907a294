//! The browser entry point: hydrates the server-rendered page.
// Leptos view types nest deeply; the compiler needs room to lay them out.
#![recursion_limit = "512"]

/// Called by the generated JavaScript once the WASM module is loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Most pages' code is a module of its own, loaded on demand: the page
    // the server rendered hydrates once its module is in.
    wasm_bindgen_futures::spawn_local(async {
        let path = leptos::prelude::window()
            .location()
            .pathname()
            .unwrap_or_default();
        app::load_page_module(&path).await;
        leptos::mount::hydrate_body(app::App);
        // Marks the page as interactive; end-to-end tests wait for it to click.
        if let Some(body) = leptos::prelude::document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
