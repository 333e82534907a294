//! sea-orm entities, one module per table.

pub mod api_key;
pub mod audit_entry;
pub mod auth_request;
pub mod event;
pub mod instance_setting;
pub mod job;
pub mod job_run;
pub mod provider;
pub mod session;
pub mod token;
pub mod user;
