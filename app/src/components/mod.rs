//! Building blocks shared by several pages.

pub mod browser;
mod device_code;
mod empty_state;
mod error_box;
mod field;
pub mod format;
mod https_warning;
mod key_values;
mod protected;
mod server_status;
mod token_actions;
mod token_dialog;

pub use device_code::DeviceCodePanel;
pub use empty_state::EmptyState;
pub use error_box::ErrorBox;
pub use field::{FieldError, form_level};
pub use https_warning::HttpsWarning;
pub use key_values::{KeyValueEditor, KeyValueRows};
pub use protected::{Protected, Session};
pub use server_status::{FailedCallNotice, failed_call_message, note_failed_call};
pub use token_actions::{ActionHooks, ActionMenu, MenuTarget, Notices};
pub mod actions {
    //! The token actions, for pages that offer them outside the menu.
    pub use super::token_actions::{
        copy_id, get_auth_link, reauthorize, refresh, rename, request_again, reset,
    };
}
pub use token_dialog::TokenDialog;
