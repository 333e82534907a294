//! The Import/Export screen's service: the same export and import as the
//! REST API, with the report in the page's shape.

use app::error::{AppError, TransferFault};
use app::transfer::{
    ExportFile, ExportInput, ImportCounts, ImportHost, ImportItem, ImportItems, ImportProgressView,
    ImportReportView, ImportSummary, TransferService, import_form,
};
use leptos::server_fn::codec::MultipartData;
use leptos::server_fn::http_export::request::Parts;

use crate::http::caller::{Admin, Authenticated};
use crate::http::security::{UploadCutOff, import_too_large};
use crate::secret::SecretString;
use crate::startup::Instance;
use crate::transfer::Problem;
use crate::transfer::export::ExportRequest;
use crate::transfer::import::{
    Counts, ImportError, ImportOptions, ImportReport, Item, Items, Mode, OnConflict,
};
use crate::transfer::progress;

/// The Import/Export page's data and actions: the same operations as
/// `POST /api/v1/export` and `POST /api/v1/import`.
pub struct TransferFacade {
    instance: Instance,
}

impl TransferFacade {
    /// Wraps the instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }
}

fn problems(list: Vec<Problem>) -> Vec<app::transfer::ImportProblem> {
    list.into_iter().map(Into::into).collect()
}

fn items(list: &[Item]) -> Vec<ImportItem> {
    list.iter()
        .map(|i| ImportItem {
            path: i.path.clone(),
            name: i.name.clone(),
            new_name: i.new_name.clone(),
            status: i.status,
            reason: i.reason.clone(),
        })
        .collect()
}

fn items_view(items: &Items) -> ImportItems {
    ImportItems {
        providers: self::items(&items.providers),
        tokens: self::items(&items.tokens),
    }
}

fn counts(c: Counts) -> ImportCounts {
    ImportCounts {
        created: c.created,
        updated: c.updated,
        skipped: c.skipped,
    }
}

/// The report as the page shows it (same field names as the REST report).
fn report_view(report: &ImportReport) -> ImportReportView {
    ImportReportView {
        applied: report.applied,
        secrets: report.secrets,
        authenticated: report.authenticated,
        endpoint_hosts: report
            .endpoint_hosts
            .iter()
            .map(|h| ImportHost {
                host: h.host.clone(),
                paths: h.paths.clone(),
            })
            .collect(),
        summary: ImportSummary {
            providers: counts(report.summary.providers),
            tokens: counts(report.summary.tokens),
            needs_credentials: report.summary.needs_credentials,
        },
        created: items_view(&report.created),
        updated: items_view(&report.updated),
        skipped: items_view(&report.skipped),
        warnings: problems(report.warnings.clone()),
        problems: problems(report.problems.clone()),
    }
}

/// Longest option in the import upload (everything but the file).
const MAX_OPTION_BYTES: usize = 1024;

/// The import upload, read.
struct ImportUpload {
    bundle: Vec<u8>,
    passphrase: Option<SecretString>,
    on_conflict: OnConflict,
    apply: bool,
    import_id: Option<String>,
}

/// Reads the import upload (the parts of [`import_form`]); the bundle is
/// counted against `max_bytes` as it arrives and refused with 413 the
/// moment it is over. Called only for an admin.
async fn read_upload(
    upload: MultipartData,
    max_bytes: usize,
    cut_off: Option<&UploadCutOff>,
) -> Result<ImportUpload, AppError> {
    let unreadable = |e: &dyn std::fmt::Display| {
        if cut_off.is_some_and(UploadCutOff::happened) {
            import_too_large(max_bytes)
        } else {
            AppError::invalid(
                import_form::BUNDLE,
                format!("the upload could not be read: {e}"),
            )
        }
    };
    let mut form = upload.into_inner().ok_or(AppError::Internal)?;
    let mut bundle: Option<Vec<u8>> = None;
    let mut passphrase = None;
    let mut on_conflict = OnConflict::default();
    let mut apply = false;
    let mut import_id = None;
    while let Some(mut field) = form.next_field().await.map_err(|e| unreadable(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        let max = match name.as_str() {
            import_form::BUNDLE if bundle.is_none() => max_bytes,
            import_form::PASSPHRASE
            | import_form::ON_CONFLICT
            | import_form::APPLY
            | import_form::IMPORT_ID => MAX_OPTION_BYTES,
            import_form::BUNDLE => {
                return Err(AppError::invalid(
                    import_form::BUNDLE,
                    "send one bundle file per import",
                ));
            }
            other => {
                return Err(AppError::Validation {
                    field: None,
                    message: format!(
                        "{other:?} is not a part of an import upload (bundle, passphrase, on_conflict, apply, import_id)"
                    ),
                });
            }
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e))? {
            if bytes.len() + chunk.len() > max {
                return Err(if name == import_form::BUNDLE {
                    import_too_large(max_bytes)
                } else {
                    AppError::invalid(name, format!("is longer than {max} bytes"))
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if name == import_form::BUNDLE {
            bundle = Some(bytes);
            continue;
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| AppError::invalid(name.clone(), "is not UTF-8 text"))?;
        match name.as_str() {
            import_form::PASSPHRASE => {
                passphrase = Some(text).filter(|p| !p.is_empty()).map(SecretString::new);
            }
            import_form::ON_CONFLICT => {
                on_conflict = OnConflict::from_name(&text).ok_or_else(|| {
                    AppError::invalid(
                        import_form::ON_CONFLICT,
                        format!("{text:?} is not skip, overwrite or rename"),
                    )
                })?;
            }
            import_form::APPLY => {
                apply = match text.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(AppError::invalid(
                            import_form::APPLY,
                            format!("{text:?} is not true or false"),
                        ));
                    }
                };
            }
            _ => import_id = Some(text).filter(|id| !id.is_empty()),
        }
    }
    let bundle = bundle.ok_or_else(|| {
        AppError::invalid(
            import_form::BUNDLE,
            "choose a bundle file exported from Quiver",
        )
    })?;
    Ok(ImportUpload {
        bundle,
        passphrase,
        on_conflict,
        apply,
        import_id,
    })
}

#[async_trait::async_trait]
impl TransferService for TransferFacade {
    async fn export(&self, parts: &Parts, input: ExportInput) -> Result<ExportFile, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        let transfer = self.instance.transfer.clone();
        let who = transfer.authorize(&caller, addr, "transfer.export").await?;
        let request = ExportRequest {
            provider_ids: (!input.provider_ids.is_empty()).then_some(input.provider_ids),
            token_ids: None,
            include_secrets: input.include_secrets,
            passphrase: input
                .passphrase
                .filter(|p| !p.is_empty())
                .map(SecretString::new),
        };
        let plan = transfer
            .plan_export(&who, request)
            .await
            .map_err(AppError::from)?;
        let file_name = plan.file_name();
        let mut out: Vec<u8> = Vec::new();
        let summary = transfer
            .write_export(&who, plan, &mut out, &|_, _| {})
            .await
            .map_err(AppError::from)?;
        let content = String::from_utf8(out).map_err(|_| AppError::Internal)?;
        Ok(ExportFile {
            file_name,
            content,
            providers: summary.providers,
            tokens: summary.tokens,
            secrets: summary.secrets,
        })
    }

    async fn import(
        &self,
        parts: &Parts,
        upload: MultipartData,
    ) -> Result<ImportReportView, AppError> {
        let Authenticated {
            caller,
            client_addr: addr,
        } = Authenticated::from_parts(parts)?;
        let transfer = self.instance.transfer.clone();
        let who = transfer.authorize(&caller, addr, "transfer.import").await?;
        // Only an admin's upload is read at all.
        let upload = read_upload(
            upload,
            self.instance.config.import_max_bytes,
            parts.extensions.get::<UploadCutOff>(),
        )
        .await?;
        let options = ImportOptions {
            mode: if upload.apply {
                Mode::Apply
            } else {
                Mode::Preview
            },
            on_conflict: upload.on_conflict,
            passphrase: upload.passphrase,
        };
        let result = transfer
            .import_tracked(&who, &upload.bundle, options, upload.import_id.as_deref())
            .await;
        match result {
            Ok(report) => Ok(report_view(&report)),
            // The page lists every problem with its place in the file.
            Err(ImportError::Invalid(report)) => Ok(report_view(&report)),
            Err(e) => match AppError::from(e) {
                AppError::Transfer {
                    fault:
                        TransferFault::TooLarge { .. }
                        | TransferFault::NotJson
                        | TransferFault::TooDeep
                        | TransferFault::Invalid
                        | TransferFault::Altered
                        | TransferFault::Unauthenticated,
                    message,
                    problems,
                    ..
                } => {
                    let mut list = problems.unwrap_or_default();
                    if list.is_empty() {
                        list.push(app::transfer::ImportProblem {
                            path: "$".into(),
                            message,
                        });
                    }
                    Ok(ImportReportView {
                        problems: list,
                        ..ImportReportView::default()
                    })
                }
                other => Err(other),
            },
        }
    }

    async fn progress(
        &self,
        parts: &Parts,
        import_id: String,
    ) -> Result<ImportProgressView, AppError> {
        Admin::from_parts(parts)?;
        let snapshot = progress::registry()
            .get(&import_id)
            .ok_or_else(|| AppError::NotFound("the import".into()))?;
        Ok(ImportProgressView {
            phase: snapshot.phase.as_str().to_owned(),
            done: snapshot.done,
            total: snapshot.total,
            finished: snapshot.finished,
        })
    }
}
