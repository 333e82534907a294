//! When a token is renewed next and how a failure is stored, decided
//! without a database: concrete tokens, a fixed instant and a seeded
//! random source.

use app::error::AppError;
use app::tokens::TokenError;
use chrono::{DateTime, Duration, Utc};
use rand::SeedableRng;
use sea_orm::ActiveValue;

use super::decide::{FailureRecord, failure_row, on_failure, refusal};
use super::due::{self, BACKOFF_MAX};
use crate::db::entity::token;
use crate::oauth::grant::GrantError;
use crate::oauth::token_response::ProviderFault;
use crate::tokens::engine::{Mode, token_error};
use crate::tokens::{Flow, TokenStatus};

const MAX_FAILURES: u32 = 5;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn now() -> DateTime<Utc> {
    at("2026-11-29T12:00:00Z")
}

fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(11)
}

/// A token renewed at noon, valid for an hour, holding sealed tokens.
pub(crate) fn token(flow: Flow) -> token::Model {
    let renewed = now();
    token::Model {
        id: "t1".into(),
        name: "Orders API".into(),
        owner_id: "u".into(),
        provider_id: "p".into(),
        flow,
        use_default_keys: true,
        client_id: None,
        client_secret: None,
        username: None,
        password: None,
        resource: None,
        scope: None,
        additional_values: "{}".into(),
        status: TokenStatus::Active,
        access_token: Some("sealed-access".into()),
        refresh_token: Some("sealed-refresh".into()),
        token_type: Some("Bearer".into()),
        expires_at: Some(renewed + Duration::hours(1)),
        granted_scope: None,
        identity: None,
        last_error: None,
        last_refreshed_at: Some(renewed),
        refresh_margin_secs: 60,
        lease_owner: Some("claim-1".into()),
        lease_until: Some(renewed + Duration::seconds(75)),
        auto_refresh: true,
        refresh_lead_secs: 300,
        refresh_due_at: Some(renewed + Duration::minutes(55)),
        failure_count: 0,
        response_fields: None,
        authorization_code: None,
        device_code: None,
        user_code: None,
        verification_uri: None,
        verification_uri_complete: None,
        device_expires_at: None,
        device_interval_secs: None,
        device_next_poll_at: None,
        refresh_token_expires_at: None,
        reauthorization_announced_for: None,
        renewal_notes: None,
        test_request_url: None,
        test_request_method: None,
        last_test_at: None,
        last_test_status: None,
        last_test_result: None,
        last_used_at: None,
        last_used_by: None,
        next_client_secret: None,
        client_secret_expires_at: None,
        next_client_secret_expires_at: None,
        secret_in_use: None,
        secret_in_use_since: None,
        secret_expiry_announced_for: None,
        next_secret_expiry_announced_for: None,
        unused_announced_for: None,
        created_at: renewed,
        updated_at: renewed,
    }
}

fn refused(error: &str, status: u16) -> TokenError {
    TokenError {
        error: error.into(),
        error_description: Some("the provider says no".into()),
        http_status: Some(status),
        retry_after_seconds: None,
    }
}

#[test]
fn due_is_the_lead_time_before_expiry_and_moves_with_the_lead() {
    let mut t = token(Flow::ClientCredentials);
    assert_eq!(
        due::next_due(&t, Duration::hours(24)),
        Some(at("2026-11-29T12:55:00Z"))
    );
    t.refresh_lead_secs = 900;
    assert_eq!(
        due::next_due(&t, Duration::hours(24)),
        Some(at("2026-11-29T12:45:00Z"))
    );
    // A lead longer than half the lifetime is cut to half of it.
    t.refresh_lead_secs = 7200;
    assert_eq!(
        due::next_due(&t, Duration::hours(24)),
        Some(at("2026-11-29T12:30:00Z"))
    );
}

#[test]
fn a_failed_token_is_not_due_without_an_access_token() {
    let mut t = token(Flow::ClientCredentials);
    t.access_token = None;
    assert_eq!(due::next_due(&t, Duration::hours(24)), None);
}

#[test]
fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
    let mut rng = rng();
    for (failures, full_secs) in [(1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600)] {
        let d = due::backoff(failures, None, &mut rng);
        assert!(
            d >= Duration::seconds(full_secs) / 2 && d <= Duration::seconds(full_secs),
            "{failures} failures: {d}"
        );
    }
    assert!(due::backoff(u32::MAX, None, &mut rng) <= BACKOFF_MAX);
}

#[test]
fn a_failure_asked_for_marks_the_token_failed_at_once() {
    let t = token(Flow::ClientCredentials);
    let record = on_failure(
        &t,
        &refused("invalid_client", 401),
        Mode::Asked,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(record.failures, 1);
    assert!(record.give_up);
    assert!(!record.needs_person);
    // The scheduler still tries again after the first backoff step.
    let due = record.next_due.unwrap();
    assert!(due >= now() + Duration::seconds(15) && due <= now() + Duration::seconds(30));
}

#[test]
fn background_failures_back_off_and_give_up_at_the_limit() {
    let mut t = token(Flow::ClientCredentials);
    t.failure_count = 2;
    let record = on_failure(
        &t,
        &refused("temporarily_unavailable", 503),
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(record.failures, 3);
    assert!(!record.give_up, "3 of 5 failures keep the token active");
    let due = record.next_due.unwrap();
    assert!(
        due >= now() + Duration::seconds(60) && due <= now() + Duration::seconds(120),
        "{due}"
    );

    t.failure_count = 4;
    let record = on_failure(
        &t,
        &refused("temporarily_unavailable", 503),
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(record.failures, 5);
    assert!(record.give_up, "the fifth failure in a row marks it failed");
    assert!(record.next_due.is_some(), "a failed token is still retried");
}

#[test]
fn retry_after_sets_the_next_attempt_when_longer_than_the_backoff() {
    let t = token(Flow::ClientCredentials);
    let error = TokenError {
        retry_after_seconds: Some(600),
        ..refused("slow_down", 429)
    };
    let record = on_failure(
        &t,
        &error,
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(record.next_due, Some(at("2026-11-29T12:10:00Z")));
}

#[test]
fn a_refused_grant_of_an_interactive_token_waits_for_a_person() {
    let t = token(Flow::AuthorizationCode);
    let record = on_failure(
        &t,
        &refused("invalid_grant", 400),
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(
        record,
        FailureRecord {
            failures: 1,
            needs_person: true,
            give_up: true,
            next_due: None,
        }
    );
    // The same refusal for Client Credentials is an ordinary failure.
    let record = on_failure(
        &token(Flow::ClientCredentials),
        &refused("invalid_grant", 400),
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert!(!record.needs_person && !record.give_up);
}

#[test]
fn without_auto_refresh_a_failure_schedules_nothing() {
    let mut t = token(Flow::ClientCredentials);
    t.auto_refresh = false;
    let record = on_failure(
        &t,
        &refused("server_error", 500),
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    assert_eq!(record.next_due, None);
}

#[test]
fn a_stored_failure_keeps_the_last_good_tokens_and_the_providers_words() {
    let mut t = token(Flow::AuthorizationCode);
    t.failure_count = 1;
    let error = refused("invalid_client", 401);
    let record = on_failure(&t, &error, Mode::Asked, MAX_FAILURES, now(), &mut rng());
    let later = now() + Duration::minutes(3);
    let row = failure_row(&t, &error, &record, later);
    // The access and refresh tokens are not written at all.
    assert_eq!(
        row.access_token,
        ActiveValue::Unchanged(Some("sealed-access".into()))
    );
    assert_eq!(
        row.refresh_token,
        ActiveValue::Unchanged(Some("sealed-refresh".into()))
    );
    assert_eq!(row.expires_at, ActiveValue::Unchanged(t.expires_at));
    assert_eq!(row.status, ActiveValue::Set(TokenStatus::Failed));
    assert_eq!(row.failure_count, ActiveValue::Set(2));
    let ActiveValue::Set(Some(words)) = &row.last_error else {
        panic!("no error stored: {:?}", row.last_error);
    };
    assert_eq!(serde_json::from_str::<TokenError>(words).unwrap(), error);
    assert_eq!(row.refresh_due_at, ActiveValue::Set(record.next_due));
    assert_eq!(row.lease_owner, ActiveValue::Set(None));
    assert_eq!(row.lease_until, ActiveValue::Set(None));
    assert_eq!(row.updated_at, ActiveValue::Set(later));
}

#[test]
fn a_background_failure_below_the_limit_keeps_the_status() {
    let t = token(Flow::ClientCredentials);
    let error = refused("server_error", 500);
    let record = on_failure(
        &t,
        &error,
        Mode::Background,
        MAX_FAILURES,
        now(),
        &mut rng(),
    );
    let row = failure_row(&t, &error, &record, now());
    assert_eq!(row.status, ActiveValue::Unchanged(TokenStatus::Active));
    assert_eq!(row.failure_count, ActiveValue::Set(1));
}

#[test]
fn the_providers_words_are_kept_as_it_said_them() {
    let stored = token_error(&GrantError::Provider(ProviderFault::Refused {
        error: "invalid_scope".into(),
        description: Some("scope orders:write is not allowed".into()),
        http_status: 400,
    }));
    assert_eq!(
        stored,
        TokenError {
            error: "invalid_scope".into(),
            error_description: Some("scope orders:write is not allowed".into()),
            http_status: Some(400),
            retry_after_seconds: None,
        }
    );
    let stored = token_error(&GrantError::RetryAfter {
        fault: ProviderFault::Refused {
            error: "slow_down".into(),
            description: None,
            http_status: 429,
        },
        retry_after_secs: 120,
    });
    assert_eq!(stored.error, "slow_down");
    assert_eq!(stored.http_status, Some(429));
    assert_eq!(stored.retry_after_seconds, Some(120));
}

#[test]
fn the_caller_is_told_what_to_do_about_a_stored_failure() {
    let t = token(Flow::AuthorizationCode);
    assert!(matches!(
        refusal(&t, Some(&refused("invalid_grant", 400))),
        AppError::NeedsReauthorization { auth_link } if auth_link == "/api/v1/tokens/t1/auth-link"
    ));
    let unavailable = TokenError {
        retry_after_seconds: Some(30),
        ..refused("server_error", 502)
    };
    assert!(matches!(
        refusal(&t, Some(&unavailable)),
        AppError::ProviderUnavailable {
            retry_after_seconds: 30,
            ..
        }
    ));
    assert!(matches!(
        refusal(&t, Some(&refused("invalid_client", 401))),
        AppError::ProviderRefused { message } if message == "invalid_client: the provider says no"
    ));
    // Without an error given, the stored one decides.
    let mut stored = token(Flow::ClientCredentials);
    stored.last_error = Some(serde_json::to_string(&refused("invalid_client", 401)).unwrap());
    assert!(matches!(
        refusal(&stored, None),
        AppError::ProviderRefused { .. }
    ));
}
