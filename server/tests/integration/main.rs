//! Quiver's integration tests, linked into one test binary (one link instead of one per file keeps the debug
//! build small and fast). Each module is one area; `support` holds the shared helpers.

mod support;

mod access_token;
mod accounts;
mod authz;
mod binary;
mod bodies;
mod connection_test;
mod device_flow;
mod edited_bundles;
mod hardening;
mod http;
mod jobs;
mod lifetimes;
mod mtls;
mod oauth_flows;
mod oauth_interactive;
mod outbound;
mod overview;
mod renewal;
mod replicas;
mod reserved_params;
mod scheduler;
mod secret_rotation;
mod site;
mod soak;
mod storage;
mod templates;
mod transfer;
mod usage;
