//! Webhook delivery: each pending event is POSTed as JSON to
//! `QUIVER_WEBHOOK_URL`, signed with HMAC-SHA256 under
//! `QUIVER_WEBHOOK_SECRET`, and retried with backoff until the receiver
//! answers 2xx or [`MAX_ATTEMPTS`] have failed. Deliveries are claimed
//! with leases, so several replicas never send the same event at once.
//!
//! Headers: `X-Quiver-Event` (the kind), `X-Quiver-Delivery` (the event
//! id; the same on every retry, for deduplication), `X-Quiver-Timestamp`
//! (Unix seconds) and `X-Quiver-Signature: sha256=<hex>`, the HMAC of
//! `<timestamp>.<body>`.

use std::time::Duration as StdDuration;

use ring::hmac;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{EventView, delivery};
use crate::clock::SharedClock;
use crate::db::entity::event;
use crate::secret::SecretString;
use crate::startup::Instance;

/// Attempts before an event's delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long one delivery may take.
const TIMEOUT: StdDuration = StdDuration::from_secs(10);
/// A delivery's lease: the timeout and some slack.
const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// Most events sent in one pass.
const BATCH: u64 = 100;

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("sha256={}", hex::encode(ctx.sign().as_ref()))
}

/// Sends pending events to the webhook.
#[derive(Clone)]
pub struct Deliverer {
    db: DatabaseConnection,
    clock: SharedClock,
    url: url::Url,
    secret: SecretString,
    client: reqwest::Client,
    replica: String,
}

impl Deliverer {
    /// A deliverer when a webhook is configured.
    pub fn new(instance: &Instance) -> Option<Self> {
        let url = instance.config.webhook_url.clone()?;
        let secret = instance.config.webhook_secret.clone()?;
        Some(Self {
            db: instance.db.clone(),
            clock: instance.clock.clone(),
            url,
            secret,
            client: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("Quiver/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a reqwest client with rustls always builds"),
            replica: instance.tokens.replica.clone(),
        })
    }

    /// Sends every event that is due; answers how many were delivered.
    pub async fn pass(&self) -> usize {
        let now = self.clock.now();
        let due = match event::Entity::find()
            .filter(event::Column::WebhookStatus.eq(delivery::PENDING))
            .filter(event::Column::WebhookNextAt.lte(now))
            .filter(
                Condition::any()
                    .add(event::Column::LeaseUntil.is_null())
                    .add(event::Column::LeaseUntil.lt(now)),
            )
            .order_by_asc(event::Column::CreatedAt)
            .limit(BATCH)
            .all(&self.db)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(error = %e, "cannot list events to deliver");
                return 0;
            }
        };
        let mut delivered = 0;
        for e in due {
            if self.claim(&e.id).await && self.deliver(e).await {
                delivered += 1;
            }
        }
        delivered
    }

    async fn claim(&self, id: &str) -> bool {
        let now = self.clock.now();
        event::Entity::update_many()
            .col_expr(event::Column::LeaseOwner, Expr::value(self.replica.clone()))
            .col_expr(event::Column::LeaseUntil, Expr::value(now + LEASE))
            .filter(event::Column::Id.eq(id))
            .filter(event::Column::WebhookStatus.eq(delivery::PENDING))
            .filter(
                Condition::any()
                    .add(event::Column::LeaseUntil.is_null())
                    .add(event::Column::LeaseUntil.lt(now)),
            )
            .exec(&self.db)
            .await
            .is_ok_and(|r| r.rows_affected == 1)
    }

    async fn deliver(&self, e: event::Model) -> bool {
        let view = EventView::from(e.clone());
        let body = serde_json::to_vec(&view).unwrap_or_default();
        let timestamp = self.clock.now().timestamp();
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Quiver-Event", &view.kind)
            .header("X-Quiver-Delivery", &view.id)
            .header("X-Quiver-Timestamp", timestamp.to_string())
            .header(
                "X-Quiver-Signature",
                signature(&self.secret, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        let ok = match &sent {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::warn!(event = %e.id, status = r.status().as_u16(), "the webhook refused an event");
                false
            }
            Err(err) => {
                tracing::warn!(event = %e.id, error = %err, "the webhook did not answer");
                false
            }
        };
        let attempts = e.webhook_attempts.saturating_add(1);
        let now = self.clock.now();
        let mut active: event::ActiveModel = e.into();
        active.webhook_attempts = Set(attempts);
        active.lease_owner = Set(None);
        active.lease_until = Set(None);
        if ok {
            active.webhook_status = Set(delivery::DELIVERED.to_owned());
            active.webhook_next_at = Set(None);
        } else if attempts >= MAX_ATTEMPTS {
            active.webhook_status = Set(delivery::FAILED.to_owned());
            active.webhook_next_at = Set(None);
        } else {
            let wait = crate::tokens::renewal::due::backoff(
                u32::try_from(attempts).unwrap_or(1),
                None,
                &mut rand::thread_rng(),
            );
            active.webhook_next_at = Set(Some(now + wait));
        }
        if let Err(err) = active.update(&self.db).await {
            tracing::error!(error = %err, "cannot record a webhook delivery");
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 shape: key "Jefe", message built from parts.
        let secret = SecretString::new("Jefe");
        let body = b"what do ya want for nothing?";
        let sig = signature(&secret, 1_700_000_000, body);
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let expected = hmac::sign(&key, b"1700000000.what do ya want for nothing?");
        assert_eq!(sig, format!("sha256={}", hex::encode(expected.as_ref())));
        assert_ne!(
            sig,
            signature(&secret, 1_700_000_001, body),
            "the timestamp is signed"
        );
        assert_ne!(
            sig,
            signature(&SecretString::new("other"), 1_700_000_000, body),
            "the key matters"
        );
    }
}
