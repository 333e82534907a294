//! Editing key/value pairs (extra parameters of providers and tokens): the
//! rows and their editor.

use std::collections::BTreeMap;

use leptos::prelude::*;

/// One row: a stable id, the key and the value.
type Row = (u32, RwSignal<String>, RwSignal<String>);

/// The rows of a key/value editor.
#[derive(Clone, Copy)]
pub struct KeyValueRows {
    rows: RwSignal<Vec<Row>>,
    next: RwSignal<u32>,
}

impl KeyValueRows {
    /// No rows.
    pub fn new() -> Self {
        Self {
            rows: RwSignal::new(Vec::new()),
            next: RwSignal::new(0),
        }
    }

    /// Rows from a map.
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        let rows = Self::new();
        for (k, v) in map {
            rows.add(k.clone(), v.clone());
        }
        rows
    }

    fn add(&self, key: String, value: String) {
        let id = self.next.get_untracked();
        self.next.set(id + 1);
        self.rows
            .update(|r| r.push((id, RwSignal::new(key), RwSignal::new(value))));
    }

    /// The pairs, rows with an empty key and value left out.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.rows
            .get_untracked()
            .into_iter()
            .map(|(_, k, v)| (k.get_untracked(), v.get_untracked()))
            .filter(|(k, v)| !(k.trim().is_empty() && v.is_empty()))
            .map(|(k, v)| (k.trim().to_owned(), v))
            .collect()
    }
}

impl Default for KeyValueRows {
    fn default() -> Self {
        Self::new()
    }
}

/// Edits key/value pairs: a row per pair, add and remove.
#[component]
pub fn KeyValueEditor(rows: KeyValueRows, label: &'static str) -> impl IntoView {
    view! {
        <div class="kv-editor">
            <For each=move || rows.rows.get() key=|(id, _, _)| *id let:row>
                {
                    let (id, key, value) = row;
                    let position = move || {
                        rows.rows.with(|r| r.iter().position(|(i, _, _)| *i == id).map_or(0, |p| p + 1))
                    };
                    view! {
                        <div class="kv-row" data-testid="kv-row">
                            <input aria-label=move || format!("Key of {label} {}", position()) placeholder="Key"
                                autocomplete="off" prop:value=key on:input=move |ev| key.set(event_target_value(&ev)) />
                            <input aria-label=move || format!("Value of {label} {}", position()) placeholder="Value"
                                autocomplete="off" prop:value=value on:input=move |ev| value.set(event_target_value(&ev)) />
                            <button type="button" class="button button-secondary button-small"
                                aria-label=move || format!("Remove {label} {}", position())
                                on:click=move |_| rows.rows.update(|r| r.retain(|(i, _, _)| *i != id))>"Remove"</button>
                        </div>
                    }
                }
            </For>
            <button type="button" class="button button-secondary button-small"
                on:click=move |_| rows.add(String::new(), String::new())>{format!("Add {label}")}</button>
        </div>
    }
}
