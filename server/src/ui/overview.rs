//! The server side of the overview screen: the caller's overview and its
//! renewal charts, drawn here as SVG.

use app::error::AppError;
use app::overview::{OverviewScreen, OverviewService, RenewalBucket};
use leptos::server_fn::http_export::request::Parts;

use super::charts::{Bar, stacked_bar_chart};
use crate::http::caller::Authenticated;
use crate::startup::Instance;

/// The overview screen's data.
pub struct OverviewFacade {
    instance: Instance,
}

impl OverviewFacade {
    /// Wraps the instance.
    pub fn new(instance: Instance) -> Self {
        Self { instance }
    }
}

fn bars(buckets: &[RenewalBucket], label: impl Fn(&str) -> String) -> Vec<Bar> {
    buckets
        .iter()
        .map(|b| Bar {
            label: label(&b.starts_at),
            total: b.renewals,
            part: b.failures,
        })
        .collect()
}

#[async_trait::async_trait]
impl OverviewService for OverviewFacade {
    async fn overview(&self, parts: &Parts) -> Result<OverviewScreen, AppError> {
        let Authenticated { caller, .. } = Authenticated::from_parts(parts)?;
        let overview = self.instance.tokens.overview(&caller).await?;
        // "2026-12-06T14:00:00Z" → "14:00 UTC".
        let hour = |at: &str| format!("{} UTC", at.get(11..16).unwrap_or(at));
        let hourly_chart = stacked_bar_chart(
            "Renewals per hour, failed ones in red",
            &bars(&overview.renewals_hourly, hour),
            ("renewals", "failed"),
        );
        let daily_chart = stacked_bar_chart(
            "Renewals per day, failed ones in red",
            &bars(&overview.renewals_daily, str::to_owned),
            ("renewals", "failed"),
        );
        Ok(OverviewScreen {
            overview,
            hourly_chart,
            daily_chart,
        })
    }
}
