//! Wire names of Quiver's closed sets (token statuses, flows, client
//! authentication methods, job actions and targets): one trait that reads
//! and writes them, and the error for a name that is none of them. The same
//! names appear in REST JSON, server-function payloads, bundles and database
//! columns, so each set is an enum whose every use the compiler checks.

use crate::error::AppError;

/// An enum with a fixed wire name per variant.
pub trait WireName: Sized + Copy + 'static {
    /// Every variant, in the order messages list them.
    const ALL: &'static [Self];
    /// The field that holds the name, as errors call it.
    const FIELD: &'static str;

    /// The wire name.
    fn as_str(self) -> &'static str;

    /// The variant with this wire name.
    fn from_wire(name: &str) -> Result<Self, UnknownName> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.as_str() == name)
            .ok_or_else(|| UnknownName {
                field: Self::FIELD,
                expected: Self::expected(),
                given: name.to_owned(),
            })
    }

    /// The accepted names in words: `a, b or c`.
    fn expected() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// A name that is not one of a set's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} must be {expected}, not {given:?}")]
pub struct UnknownName {
    /// The field, e.g. `flow`.
    pub field: &'static str,
    /// The accepted names in words.
    pub expected: String,
    /// What was given.
    pub given: String,
}

impl UnknownName {
    /// The message for the field: `must be a, b or c`.
    pub fn must_be(&self) -> String {
        format!("must be {}", self.expected)
    }
}

/// Bad input names the field and what it accepts.
impl From<UnknownName> for AppError {
    fn from(e: UnknownName) -> Self {
        AppError::invalid(e.field, e.must_be())
    }
}

/// `as_str`, `Display` and `FromStr` of a [`WireName`] enum, all by wire name (the
/// server stores the enum in a text column through them).
macro_rules! wire_name_impls {
    ($name:ident) => {
        impl $name {
            /// The wire name.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::names::WireName>::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::WireName::as_str(*self))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::names::WireName>::from_wire(s)
            }
        }
    };
}
pub(crate) use wire_name_impls;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// Every variant survives the wire name, serde and `FromStr` both
    /// ways, and an unknown name is refused with a message naming the field.
    pub fn round_trips<T>(expected: &str)
    where
        T: WireName
            + std::fmt::Debug
            + PartialEq
            + Serialize
            + DeserializeOwned
            + std::str::FromStr<Err = UnknownName>
            + std::fmt::Display,
    {
        for &v in T::ALL {
            let name = v.as_str();
            assert_eq!(v.to_string(), name);
            assert_eq!(name.parse::<T>(), Ok(v));
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
        }
        assert_eq!(T::expected(), expected);
        let e = "bogus".parse::<T>().unwrap_err();
        assert_eq!(e.must_be(), format!("must be {expected}"));
        assert_eq!(
            e.to_string(),
            format!("{} must be {expected}, not \"bogus\"", T::FIELD)
        );
        assert!(serde_json::from_str::<T>("\"bogus\"").is_err());
        let app: AppError = e.into();
        assert_eq!(
            app,
            AppError::invalid(T::FIELD, format!("must be {expected}"))
        );
    }
}
