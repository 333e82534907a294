//! Export and import failures as the one error the REST API, the pages'
//! server functions and the command line answer with: each keeps its
//! message, its problems with their JSON paths and, for a bundle that was
//! read far enough, the whole report.

use app::error::{AppError, TransferFault};
use app::transfer::ImportProblem;

use super::export::ExportError;
use super::import::ImportError;
use super::reader::{BundleError, Problem};

impl From<Problem> for ImportProblem {
    fn from(p: Problem) -> Self {
        Self {
            path: p.path,
            message: p.message,
        }
    }
}

fn listed(problems: Vec<Problem>) -> Option<Vec<ImportProblem>> {
    Some(problems.into_iter().map(ImportProblem::from).collect())
}

impl From<ExportError> for AppError {
    fn from(e: ExportError) -> Self {
        let message = e.to_string();
        match e {
            ExportError::UnknownIds(list) => Self::Transfer {
                fault: TransferFault::Selection,
                message,
                problems: listed(list),
                report: None,
            },
            ExportError::TooManyIds => Self::Transfer {
                fault: TransferFault::Selection,
                message,
                problems: None,
                report: None,
            },
            ExportError::PassphraseRequired
            | ExportError::PassphraseWithoutSecrets
            | ExportError::WeakPassphrase => Self::invalid("passphrase", message),
            ExportError::Unsealable { .. }
            | ExportError::Key(_)
            | ExportError::Storage(_)
            | ExportError::Write(_) => {
                tracing::error!(error = %message, "export failed");
                Self::Internal
            }
        }
    }
}

impl From<ImportError> for AppError {
    fn from(e: ImportError) -> Self {
        let message = e.to_string();
        let problems = e.problems();
        let refused = |fault, problems| Self::Transfer {
            fault,
            message: message.clone(),
            problems,
            report: None,
        };
        match e {
            ImportError::Bundle(BundleError::TooLarge { limit, .. }) => refused(
                TransferFault::TooLarge {
                    limit_bytes: limit as u64,
                },
                listed(problems),
            ),
            ImportError::Bundle(
                BundleError::NotJson { .. } | BundleError::Truncated { .. } | BundleError::Empty,
            ) => refused(TransferFault::NotJson, listed(problems)),
            ImportError::Bundle(BundleError::TooDeep { .. }) => {
                refused(TransferFault::TooDeep, listed(problems))
            }
            ImportError::Bundle(_) | ImportError::Secrets(_) => {
                refused(TransferFault::Invalid, listed(problems))
            }
            ImportError::Invalid(report) => Self::Transfer {
                fault: TransferFault::Invalid,
                message,
                problems: listed(problems),
                report: serde_json::to_value(&*report).ok().map(Box::new),
            },
            ImportError::Altered(_) => refused(TransferFault::Altered, listed(problems)),
            ImportError::Unauthenticated => {
                refused(TransferFault::Unauthenticated, listed(problems))
            }
            ImportError::PassphraseRequired => refused(TransferFault::PassphraseRequired, None),
            ImportError::WrongPassphrase => refused(TransferFault::WrongPassphrase, None),
            ImportError::BadImportId => Self::invalid("import_id", message),
            ImportError::Busy(_) => refused(TransferFault::ImportRunning, None),
            ImportError::Storage(db) => {
                tracing::error!(error = %db, "import failed and was rolled back");
                refused(TransferFault::RolledBack, None)
            }
        }
    }
}
