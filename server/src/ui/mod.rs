//! The server side of the app's service traits: each turns a request's
//! identity into a caller and calls the same operations the REST API uses.

mod accounts;
mod auth;
pub mod charts;
mod instance;
mod jobs;
mod overview;
mod providers;
mod tokens;
mod transfer;

pub use accounts::AccountsFacade;
pub use auth::AuthFacade;
pub use instance::InstanceFacts;
pub use jobs::JobsFacade;
pub use overview::OverviewFacade;
pub use providers::ProvidersFacade;
pub use tokens::TokensFacade;
pub use transfer::TransferFacade;
