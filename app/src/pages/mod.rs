//! One module per screen.

mod api_keys;
mod audit;
mod import_export;
mod jobs;
mod login;
mod not_found;
mod notifications;
mod overview;
mod provider_templates;
mod providers;
mod settings;
mod token_detail;
mod tokens;
mod users;

pub use api_keys::ApiKeysCard;
pub use audit::AuditPage;
pub use import_export::ImportExportPage;
pub use jobs::JobsPage;
pub use login::LoginPage;
pub use not_found::NotFound;
pub use notifications::NotificationsPage;
pub use overview::OverviewPage;
pub use provider_templates::ProviderTemplatePage;
pub use providers::{ProviderEditPage, ProvidersPage};
pub use settings::SettingsPage;
pub use token_detail::TokenDetailPage;
pub use tokens::TokensPage;
pub use users::UsersPage;
