//! When a job runs: every N minutes, or a five-field cron expression in
//! UTC.

use std::str::FromStr;

use app::error::AppError;
use chrono::{DateTime, Duration, Utc};

/// When a job runs.
#[derive(Debug, Clone)]
pub enum When {
    /// Every N minutes.
    Every(i64),
    /// A five-field cron expression, in UTC.
    Cron(Box<croner::Cron>),
}

impl When {
    /// Reads the schedule of a job input: exactly one of the two.
    pub fn parse(every: Option<i64>, cron: Option<&str>) -> Result<Self, AppError> {
        match (every, cron.map(str::trim).filter(|c| !c.is_empty())) {
            (Some(_), Some(_)) => Err(AppError::invalid(
                "cron",
                "give either every_minutes or cron, not both",
            )),
            (None, None) => Err(AppError::invalid(
                "every_minutes",
                "give every_minutes or a cron expression",
            )),
            (Some(n), None) if (1..=525_600).contains(&n) => Ok(Self::Every(n)),
            (Some(_), None) => Err(AppError::invalid(
                "every_minutes",
                "must be between 1 and 525600 (a year)",
            )),
            (None, Some(text)) => {
                if text.split_whitespace().count() != 5 {
                    return Err(AppError::invalid(
                        "cron",
                        "must have five fields: minute hour day-of-month month day-of-week (UTC), e.g. 0 3 * * *",
                    ));
                }
                croner::Cron::from_str(text)
                    .map(|c| Self::Cron(Box::new(c)))
                    .map_err(|e| {
                        AppError::invalid("cron", format!("is not a valid cron expression: {e}"))
                    })
            }
        }
    }

    /// The first run time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Self::Every(n) => Some(after + Duration::minutes(*n)),
            Self::Cron(c) => c.find_next_occurrence(&after, false).ok(),
        }
    }
}
