//! The administrative subcommands: accounts, API keys, the audit log and
//! master key rotation. They work on the database directly, with the same
//! services the server uses, and record what they do in the audit log.

use std::io::{BufRead, IsTerminal, Read};

use anyhow::{anyhow, bail};

use crate::account::{Role, password};
use crate::audit::{Actor, AuditEvent, AuditFilter, Outcome};
use crate::cli::{ApiKeyCommand, UserCommand};
use crate::master_key::{self, MasterKey};
use crate::rotation;
use crate::secret::SecretString;
use crate::startup::Instance;

/// A password from standard input, or a generated one (then `true`).
fn password_from_stdin() -> anyhow::Result<(SecretString, bool)> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok((password::generate(), true));
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| anyhow!("cannot read the password from standard input: {e}"))?;
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
pub async fn user(instance: &Instance, command: UserCommand) -> anyhow::Result<()> {
    let accounts = &instance.accounts;
    match command {
        UserCommand::Create { email, admin } => {
            let (password, generated) = password_from_stdin()?;
            let role = if admin { Role::Admin } else { Role::User };
            let user = accounts.users.create(&email, &password, role).await?;
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
            let user = accounts.users.find_by_email(&email).await?;
            let (password, generated) = password_from_stdin()?;
            accounts.users.set_password(&user.id, &password).await?;
            let ended = accounts.sessions.end_all_for(&user.id).await?;
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
            let user = accounts.users.find_by_email(&email).await?;
            accounts.users.set_disabled(&user.id, true).await?;
            let ended = accounts.sessions.end_all_for(&user.id).await?;
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
pub async fn api_key(instance: &Instance, command: ApiKeyCommand) -> anyhow::Result<()> {
    let accounts = &instance.accounts;
    match command {
        ApiKeyCommand::Create { name, email } => {
            let user = accounts.users.find_by_email(&email).await?;
            let (key, secret) = accounts.api_keys.create(&user.id, &name).await?;
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
pub async fn audit_tail(instance: &Instance, tail: u64) -> anyhow::Result<()> {
    let (mut entries, _) = instance
        .accounts
        .audit
        .query(&AuditFilter::default(), 0, tail.clamp(1, 500))
        .await?;
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
) -> anyhow::Result<()> {
    let new = master_key::load(&crate::master_key::MasterKeySource::File(
        new_key_file.to_path_buf(),
    ))
    .map_err(|e| {
        anyhow!(
            e.to_string()
                .replace("QUIVER_MASTER_KEY_FILE", "--new-key-file")
        )
    })?
    .0;
    if new.id() == old.id() {
        bail!("the new key is the key in use; nothing to rotate");
    }
    let report = rotation::rotate(db, old, &new, |r| {
        eprintln!("rotate-key: {} values re-sealed so far", r.resealed);
    })
    .await?;
    println!(
        "every secret is now sealed under key {} ({} re-sealed now, {} already were). \
         Start Quiver with the new key file; the old key is no longer needed.",
        new.id(),
        report.resealed,
        report.already_done
    );
    Ok(())
}

/// A passphrase from the variable `var`, else typed on the terminal (not
/// echoed), else the first line of standard input; never from the command
/// line, where other users could read it. `None` when nothing was given.
fn passphrase_from(var: &str, confirm: bool) -> anyhow::Result<Option<SecretString>> {
    if let Ok(value) = std::env::var(var)
        && !value.is_empty()
    {
        return Ok(Some(SecretString::new(value)));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let term = console::Term::stderr();
        let ask = |prompt: &str| -> anyhow::Result<SecretString> {
            term.write_str(prompt)
                .and_then(|()| term.read_secure_line())
                .map(SecretString::new)
                .map_err(|e| anyhow!("cannot read the passphrase: {e}"))
        };
        let first = ask("Passphrase: ")?;
        if confirm && !first.is_empty() && ask("The same passphrase again: ")? != first {
            bail!("the two passphrases differ");
        }
        return Ok((!first.is_empty()).then_some(first));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow!("cannot read the passphrase from standard input: {e}"))?;
    let secret = SecretString::new(line.trim_end_matches(['\r', '\n']));
    zeroize::Zeroize::zeroize(&mut line);
    Ok((!secret.is_empty()).then_some(secret))
}

/// A progress bar on standard error (drawn only on a terminal).
fn bar(message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// Up to `max` problem lines, indented, with a count of the rest.
fn problem_lines(problems: &[crate::transfer::Problem], max: usize) -> String {
    let mut out: Vec<String> = problems
        .iter()
        .take(max)
        .map(|p| format!("  {p}"))
        .collect();
    if problems.len() > max {
        out.push(format!("  … and {} more", problems.len() - max));
    }
    out.join("\n")
}

/// `quiver export --out FILE [--provider ID]… [--token ID]… [--include-secrets]`
pub async fn export(
    instance: &Instance,
    out: &std::path::Path,
    providers: Vec<String>,
    tokens: Vec<String>,
    include_secrets: bool,
) -> anyhow::Result<()> {
    use crate::transfer::{ExportError, ExportRequest};
    use tokio::io::AsyncWriteExt;

    let transfer = instance.transfer.clone();
    let who = transfer.authorize_cli().await.map_err(anyhow::Error::msg)?;
    let passphrase = if include_secrets {
        Some(
            passphrase_from("QUIVER_EXPORT_PASSPHRASE", true)?.ok_or_else(|| {
                anyhow!(
                    "--include-secrets needs a passphrase: set QUIVER_EXPORT_PASSPHRASE or type one"
                )
            })?,
        )
    } else {
        None
    };
    let request = ExportRequest {
        provider_ids: (!providers.is_empty()).then_some(providers),
        token_ids: (!tokens.is_empty()).then_some(tokens),
        include_secrets,
        passphrase,
    };
    let plan = transfer
        .plan_export(&who, request)
        .await
        .map_err(|e| match &e {
            ExportError::UnknownIds(problems) => {
                let problems = problems
                    .iter()
                    .map(|p| crate::transfer::Problem {
                        path: p
                            .path
                            .replace("$.provider_ids", "--provider")
                            .replace("$.token_ids", "--token"),
                        message: p.message.clone(),
                    })
                    .collect::<Vec<_>>();
                anyhow!(
                    "nothing was exported: unknown ids\n{}",
                    problem_lines(&problems, 50)
                )
            }
            other => anyhow!("nothing was exported: {other}"),
        })?;
    // Written beside the target and renamed at the end: a failed export
    // leaves no partial bundle behind.
    let file_name = out
        .file_name()
        .ok_or_else(|| anyhow!("--out {} is not a file name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let partial = out.with_file_name(format!(".{file_name}.partial"));
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options
        .open(&partial)
        .await
        .map_err(|e| anyhow!("cannot write {}: {e}", partial.display()))?;
    let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
    let progress = bar("exporting");
    let shown = progress.clone();
    let result = transfer
        .write_export(&who, plan, &mut writer, &move |done, total| {
            shown.set_length(total);
            shown.set_position(done);
        })
        .await;
    progress.finish_and_clear();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            bail!("the export failed: {e}");
        }
    };
    writer
        .shutdown()
        .await
        .map_err(|e| anyhow!("cannot write {}: {e}", partial.display()))?;
    tokio::fs::rename(&partial, out)
        .await
        .map_err(|e| anyhow!("cannot move the bundle to {}: {e}", out.display()))?;
    println!(
        "exported {} providers and {} tokens to {} ({} bytes, {})",
        summary.providers,
        summary.tokens,
        out.display(),
        summary.bytes,
        if summary.secrets {
            "secrets sealed under your passphrase"
        } else {
            "without secrets"
        }
    );
    Ok(())
}

/// `quiver import FILE [--apply] [--on-conflict skip|overwrite|rename] [--json]`
pub async fn import(
    instance: &Instance,
    file: &std::path::Path,
    apply: bool,
    on_conflict: crate::cli::ConflictPolicy,
    json: bool,
) -> anyhow::Result<()> {
    use crate::cli::ConflictPolicy;
    use crate::transfer::progress::Phase;
    use crate::transfer::{BundleError, ImportOptions, Mode, OnConflict, read_bundle};

    let transfer = instance.transfer.clone();
    let who = transfer.authorize_cli().await.map_err(anyhow::Error::msg)?;
    let limits = transfer.import_limits();
    let size = std::fs::metadata(file)
        .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?
        .len();
    // Refused before it is read into memory.
    let read = if usize::try_from(size).map_or(true, |n| n > limits.max_bytes) {
        Err(BundleError::TooLarge {
            size: usize::try_from(size).unwrap_or(usize::MAX),
            limit: limits.max_bytes,
        })
    } else {
        let bytes = tokio::fs::read(file)
            .await
            .map_err(|e| anyhow!("cannot read {}: {e}", file.display()))?;
        read_bundle(&bytes, &limits)
    };
    let passphrase = match &read {
        Ok(bundle) if bundle.secrets.is_some() => {
            passphrase_from("QUIVER_IMPORT_PASSPHRASE", false)?
        }
        _ => None,
    };
    let options = ImportOptions {
        mode: if apply { Mode::Apply } else { Mode::Preview },
        on_conflict: match on_conflict {
            ConflictPolicy::Skip => OnConflict::Skip,
            ConflictPolicy::Overwrite => OnConflict::Overwrite,
            ConflictPolicy::Rename => OnConflict::Rename,
        },
        passphrase,
    };
    let progress = bar("importing");
    let shown = progress.clone();
    let on_progress = move |phase: Phase, done: u64, total: u64| {
        if phase == Phase::Writing {
            shown.set_length(total);
            shown.set_position(done);
        }
    };
    let result = transfer
        .import_read(&who, read, options, &on_progress)
        .await;
    progress.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let problems = e.problems();
            let mut message = format!("{}: {e}", file.display());
            if problems.len() > 1 {
                message.push('\n');
                message.push_str(&problem_lines(&problems, 50));
            }
            return Err(anyhow!(message));
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let s = report.summary;
    println!(
        "{} of {} (on conflict: {}){}",
        if report.applied {
            "imported"
        } else {
            "preview"
        },
        file.display(),
        match on_conflict {
            ConflictPolicy::Skip => "skip",
            ConflictPolicy::Overwrite => "overwrite",
            ConflictPolicy::Rename => "rename",
        },
        if report.applied {
            ""
        } else {
            ": nothing was written; add --apply to import"
        }
    );
    println!(
        "providers: {} created, {} updated, {} skipped",
        s.providers.created, s.providers.updated, s.providers.skipped
    );
    println!(
        "tokens: {} created, {} updated, {} skipped; {} without credentials (status needs_credentials)",
        s.tokens.created, s.tokens.updated, s.tokens.skipped, s.needs_credentials
    );
    let lines = |label: &str, items: &[crate::transfer::import::Item]| {
        for it in items.iter().take(20) {
            let renamed = it
                .new_name
                .as_deref()
                .map(|n| format!(" as {n:?}"))
                .unwrap_or_default();
            println!("  {label} {:?}{renamed}  ({})", it.name, it.path);
        }
        if items.len() > 20 {
            println!("  … and {} more {label}", items.len() - 20);
        }
    };
    println!(
        "{}",
        if report.authenticated {
            "authenticated: the bundle is as it was exported (checked with its passphrase)"
        } else {
            "NOT authenticated: nothing proves this bundle is as it was exported; check every host below before applying it"
        }
    );
    if !report.endpoint_hosts.is_empty() {
        println!("endpoint hosts:");
        for h in &report.endpoint_hosts {
            let shown: Vec<&str> = h.paths.iter().take(6).map(String::as_str).collect();
            let more = match h.paths.len().saturating_sub(6) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            println!("  {}  ({}{more})", h.host, shown.join(", "));
        }
    }
    lines("new provider", &report.created.providers);
    lines("updated provider", &report.updated.providers);
    lines("skipped provider", &report.skipped.providers);
    lines("new token", &report.created.tokens);
    lines("updated token", &report.updated.tokens);
    lines("skipped token", &report.skipped.tokens);
    if !report.warnings.is_empty() {
        eprintln!("warnings:\n{}", problem_lines(&report.warnings, 50));
    }
    Ok(())
}
