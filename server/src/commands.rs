//! The administrative subcommands: accounts, API keys, the audit log and
//! master key rotation. They work on the database directly, with the same
//! services the server uses, and record what they do in the audit log.

use std::io::{IsTerminal, Read};

use crate::account::{Role, password};
use crate::audit::{Actor, AuditEvent, AuditFilter, Outcome};
use crate::cli::{ApiKeyCommand, UserCommand};
use crate::master_key::{self, MasterKey};
use crate::rotation;
use crate::secret::SecretString;
use crate::startup::Instance;

/// A password from standard input, or a generated one (then `true`).
fn password_from_stdin() -> Result<(SecretString, bool), String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok((password::generate(), true));
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let line = text.lines().next().unwrap_or_default().to_owned();
    let secret = SecretString::new(line);
    zeroize::Zeroize::zeroize(&mut text);
    if secret.is_empty() {
        Ok((password::generate(), true))
    } else {
        Ok((secret, false))
    }
}

fn cli_actor() -> Actor {
    Actor::System("cli".into())
}

/// `quiver user …`
pub async fn user(instance: &Instance, command: UserCommand) -> Result<(), String> {
    let accounts = &instance.accounts;
    match command {
        UserCommand::Create { email, admin } => {
            let (password, generated) = password_from_stdin()?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = accounts
                .users
                .create(&email, &password, role)
                .await
                .map_err(|e| e.to_string())?;
            let _ = accounts
                .audit
                .record(
                    AuditEvent::new(cli_actor(), "user.create", "user", Outcome::Success)
                        .object(user.id.clone())
                        .detail(format!("{} ({role})", user.email)),
                )
                .await;
            println!("created {role} {} (id {})", user.email, user.id);
            if generated {
                println!("password (shown once): {}", password.expose());
            }
        }
        UserCommand::ResetPassword { email } => {
            let user = accounts
                .users
                .find_by_email(&email)
                .await
                .map_err(|e| e.to_string())?;
            let (password, generated) = password_from_stdin()?;
            accounts
                .users
                .set_password(&user.id, &password)
                .await
                .map_err(|e| e.to_string())?;
            let ended = accounts
                .sessions
                .end_all_for(&user.id)
                .await
                .map_err(|e| e.to_string())?;
            let _ = accounts
                .audit
                .record(
                    AuditEvent::new(cli_actor(), "user.reset_password", "user", Outcome::Success)
                        .object(user.id.clone()),
                )
                .await;
            println!(
                "password of {} replaced; {ended} sessions ended",
                user.email
            );
            if generated {
                println!("password (shown once): {}", password.expose());
            }
        }
        UserCommand::Disable { email } => {
            let user = accounts
                .users
                .find_by_email(&email)
                .await
                .map_err(|e| e.to_string())?;
            accounts
                .users
                .set_disabled(&user.id, true)
                .await
                .map_err(|e| e.to_string())?;
            let ended = accounts
                .sessions
                .end_all_for(&user.id)
                .await
                .map_err(|e| e.to_string())?;
            let _ = accounts
                .audit
                .record(
                    AuditEvent::new(cli_actor(), "user.disable", "user", Outcome::Success)
                        .object(user.id.clone()),
                )
                .await;
            println!("{} disabled; {ended} sessions ended", user.email);
        }
    }
    Ok(())
}

/// `quiver api-key …`
pub async fn api_key(instance: &Instance, command: ApiKeyCommand) -> Result<(), String> {
    let accounts = &instance.accounts;
    match command {
        ApiKeyCommand::Create { name, email } => {
            let user = accounts
                .users
                .find_by_email(&email)
                .await
                .map_err(|e| e.to_string())?;
            let (key, secret) = accounts
                .api_keys
                .create(&user.id, &name)
                .await
                .map_err(|e| e.to_string())?;
            let _ = accounts
                .audit
                .record(
                    AuditEvent::new(cli_actor(), "api_key.create", "api_key", Outcome::Success)
                        .object(key.id.clone())
                        .detail(format!("{} for {}", key.name, user.email)),
                )
                .await;
            println!(
                "created API key {:?} (id {}) acting as {}",
                key.name, key.id, user.email
            );
            println!("key (shown once): {}", secret.expose());
        }
    }
    Ok(())
}

/// `quiver audit --tail N`
pub async fn audit_tail(instance: &Instance, tail: u64) -> Result<(), String> {
    let (mut entries, _) = instance
        .accounts
        .audit
        .query(&AuditFilter::default(), 0, tail.clamp(1, 500))
        .await
        .map_err(|e| e.to_string())?;
    entries.reverse();
    for e in entries {
        println!(
            "{}  {:<9} {:<30} {:<22} {}:{}  {}{}",
            crate::account::ops::rfc3339(e.at),
            e.outcome,
            e.actor_label,
            e.action,
            e.object_kind,
            e.object_id.as_deref().unwrap_or("-"),
            e.client_addr.as_deref().unwrap_or("-"),
            e.detail.map(|d| format!("  {d}")).unwrap_or_default()
        );
    }
    Ok(())
}

/// `quiver rotate-key --new-key-file FILE`
pub async fn rotate_key(
    db: &sea_orm::DatabaseConnection,
    old: &MasterKey,
    new_key_file: &std::path::Path,
) -> Result<(), String> {
    let new = master_key::load(&crate::config::MasterKeySource::File(
        new_key_file.to_path_buf(),
    ))
    .map_err(|e| {
        e.to_string()
            .replace("QUIVER_MASTER_KEY_FILE", "--new-key-file")
    })?
    .0;
    if new.id() == old.id() {
        return Err("the new key is the key in use; nothing to rotate".into());
    }
    let report = rotation::rotate(db, old, &new, |r| {
        eprintln!("rotate-key: {} values re-sealed so far", r.resealed);
    })
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "every secret is now sealed under key {} ({} re-sealed now, {} already were). \
         Start Quiver with the new key file; the old key is no longer needed.",
        new.id(),
        report.resealed,
        report.already_done
    );
    Ok(())
}
