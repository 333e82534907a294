//! Text from a bundle inside messages: clipped, so an entry megabytes long
//! cannot make a message as long, and quoted as JSON.

/// `text` cut to `max` characters, with `…` when it was longer.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max).collect();
        short.push('…');
        short
    }
}

/// `text` clipped to 64 characters, as a JSON string.
pub(crate) fn quoted(text: &str) -> String {
    // Clipped before quoting: an id may be megabytes long.
    serde_json::to_string(&clip(text, 64)).unwrap_or_default()
}
