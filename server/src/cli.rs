//! The `quiver` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Quiver: a self-hosted OAuth token manager.
#[derive(Debug, Parser)]
#[command(name = "quiver", version, about)]
pub struct Cli {
    /// A TOML settings file; QUIVER_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "QUIVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the web app and API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Print the version.
    Version,
    /// Manage local accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Print the newest audit log entries, oldest first.
    Audit {
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        tail: u64,
    },
    /// Re-seal every secret under a new master key. Stop Quiver first; run
    /// again after an interruption. Afterwards, start Quiver with the new key.
    RotateKey {
        /// A file holding the new key (base64 of 32 bytes), e.g. made with
        /// `openssl rand -base64 32 > new.key`.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
    /// Export providers and tokens to a bundle file (all of them unless
    /// --provider or --token is given). Secrets are left out unless
    /// --include-secrets; then they are sealed under a passphrase read from
    /// QUIVER_EXPORT_PASSPHRASE, or asked for (standard input).
    Export {
        /// Where to write the bundle (written whole or not at all).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// A provider to export, with its tokens (repeatable).
        #[arg(long = "provider", value_name = "ID")]
        providers: Vec<String>,
        /// A token to export, with its provider (repeatable).
        #[arg(long = "token", value_name = "ID")]
        tokens: Vec<String>,
        /// Seal secrets (client secrets, keys, passwords, access and refresh
        /// tokens) into the bundle under a passphrase.
        #[arg(long)]
        include_secrets: bool,
    },
    /// Import a bundle file: a preview unless --apply. A passphrase for its
    /// secrets is read from QUIVER_IMPORT_PASSPHRASE, or asked for
    /// (standard input).
    Import {
        /// The bundle.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write it (in one transaction); without this, only report.
        #[arg(long)]
        apply: bool,
        /// When a name is taken: keep what is here, replace it, or keep both
        /// (the bundle's entry gets a new name).
        #[arg(long, value_enum, default_value_t = ConflictPolicy::Skip)]
        on_conflict: ConflictPolicy,
        /// Print the whole report as JSON on standard output.
        #[arg(long)]
        json: bool,
    },
}

/// `--on-conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConflictPolicy {
    /// Keep what is here.
    Skip,
    /// Replace it with the bundle's.
    Overwrite,
    /// Keep both; the bundle's entry is renamed "Name (2)".
    Rename,
}

/// `quiver user …`
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input; when
    /// none is given there (or it is a terminal), one is generated and
    /// printed once.
    Create {
        /// The account's email.
        #[arg(long)]
        email: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password (standard input, or generated) and end every session.
    ResetPassword {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
    /// Disable an account: it cannot sign in and its sessions and API keys stop working.
    Disable {
        /// The account's email.
        #[arg(long)]
        email: String,
    },
}

/// `quiver api-key …`
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum ApiKeyCommand {
    /// Create an API key acting as a user; the key is printed once.
    Create {
        /// A name for the key.
        #[arg(long)]
        name: String,
        /// The user the key acts as.
        #[arg(long)]
        email: String,
    },
}
