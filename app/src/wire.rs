//! How server functions answer the browser: JSON, decoded from text.
//!
//! Leptos decodes the resource values a page is sent with using
//! `serde_json::from_str`; the built-in `Json` answer encoding decodes with
//! `serde_json::from_slice`. Every answer type would then be compiled into
//! the WASM twice, once per reader. Reading answers as text as well (they
//! are UTF-8 JSON) leaves one decoder per type; the bytes on the wire are
//! the same.

use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::Serialize;
use serde::de::{DeserializeOwned, Error as _};

/// JSON, read as text.
pub struct JsonTextEncoding;

impl ContentType for JsonTextEncoding {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonTextEncoding {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonTextEncoding {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde_json::Error::custom)?;
        serde_json::from_str(text)
    }
}

/// The answer encoding of every server function: `POST`, JSON read as text.
pub type JsonText = Post<JsonTextEncoding>;

#[cfg(test)]
mod tests {
    use super::JsonTextEncoding;
    use leptos::server_fn::{Bytes, Decodes, Encodes};

    #[test]
    fn an_answer_reads_back_as_it_was_written_and_bad_text_is_an_error() {
        let answer = vec![Some("é ✓".to_owned()), None];
        let bytes = <JsonTextEncoding as Encodes<_>>::encode(&answer).unwrap();
        assert_eq!(&bytes[..], "[\"é ✓\",null]".as_bytes());
        let read: Vec<Option<String>> = JsonTextEncoding::decode(bytes).unwrap();
        assert_eq!(read, answer);
        let invalid = Bytes::from_static(&[b'"', 0xff, b'"']);
        assert!(<JsonTextEncoding as Decodes<String>>::decode(invalid).is_err());
    }
}
