//! The storage contract, run on SQLite and on PostgreSQL: the same behaviour from both.

use domain::{
    audit::{self, Actor, AuditEvent, RequestMeta},
    clock::{Clock, ManualClock},
    db::Db,
    jobs::{self, NewJob, Runner},
    personal_data,
    random::{OsRandom, SeededRandom},
    sessions,
};
use serde_json::json;
use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
use time::{macros::datetime, Duration};
use uuid::Uuid;

fn clock() -> ManualClock {
    ManualClock::new(datetime!(2026-11-22 12:00 UTC))
}

async fn jobs_enqueued_in_a_rolled_back_transaction_do_not_exist(db: Db) {
    let clock = clock();
    let random = SeededRandom::new(1);
    let mut tx = db.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!({"n": 1}), &clock),
        &clock,
        &random,
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(jobs::counts(&db).await.unwrap().queued, 0);

    let mut tx = db.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!({"n": 2}), &clock),
        &clock,
        &random,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let job = jobs::claim(&db, "w1", &clock)
        .await
        .unwrap()
        .expect("a committed job is claimable");
    assert_eq!(job.kind, "demo");
    assert_eq!(job.payload.0, json!({"n": 2}));
    assert_eq!(job.attempts, 1);
}

async fn a_claimed_job_is_not_claimed_twice_until_its_lease_expires(db: Db) {
    let clock = clock();
    let random = SeededRandom::new(2);
    let mut tx = db.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!(null), &clock),
        &clock,
        &random,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let first = jobs::claim(&db, "w1", &clock).await.unwrap().unwrap();
    assert!(
        jobs::claim(&db, "w2", &clock).await.unwrap().is_none(),
        "leased to w1"
    );
    clock.advance(jobs::LEASE + Duration::seconds(1));
    let again = jobs::claim(&db, "w2", &clock)
        .await
        .unwrap()
        .expect("lease expired: the runner died");
    assert_eq!(again.id, first.id);
    assert_eq!(again.attempts, 2);
}

async fn concurrent_claims_hand_each_job_to_one_runner(db: Db) {
    let clock = clock();
    let random = SeededRandom::new(3);
    let mut tx = db.begin().await.unwrap();
    for n in 0..20 {
        jobs::enqueue(
            &mut tx,
            NewJob::now("demo", json!(n), &clock),
            &clock,
            &random,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let db = db.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = jobs::claim(&db, &format!("w{w}"), &clock).await.unwrap() {
                mine.push(job.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let before = all.len();
    all.sort();
    all.dedup();
    assert_eq!(before, 20, "every job claimed");
    assert_eq!(all.len(), 20, "no job claimed twice");
}

async fn failed_jobs_retry_with_backoff_then_stay_failed(db: Db) {
    let clock = clock();
    let random = SeededRandom::new(4);
    let mut tx = db.begin().await.unwrap();
    let mut job = NewJob::now("demo", json!(null), &clock);
    job.max_attempts = 3;
    jobs::enqueue(&mut tx, job, &clock, &random).await.unwrap();
    tx.commit().await.unwrap();

    let job = jobs::claim(&db, "w", &clock).await.unwrap().unwrap();
    jobs::fail(&db, &job, "smtp timeout", &clock, &random)
        .await
        .unwrap();
    assert!(
        jobs::claim(&db, "w", &clock).await.unwrap().is_none(),
        "not before its backoff"
    );
    clock.advance(Duration::seconds(13));
    let job = jobs::claim(&db, "w", &clock)
        .await
        .unwrap()
        .expect("retried after ~10 s");
    assert_eq!(job.attempts, 2);
    jobs::fail(&db, &job, "smtp timeout", &clock, &random)
        .await
        .unwrap();
    clock.advance(Duration::seconds(25));
    let job = jobs::claim(&db, "w", &clock)
        .await
        .unwrap()
        .expect("retried after ~20 s");
    jobs::fail(&db, &job, "smtp timeout again", &clock, &random)
        .await
        .unwrap();
    clock.advance(Duration::days(1));
    assert!(
        jobs::claim(&db, "w", &clock).await.unwrap().is_none(),
        "gave up after 3 attempts"
    );
    assert_eq!(
        jobs::counts(&db).await.unwrap(),
        jobs::QueueCounts {
            queued: 0,
            failed: 1
        }
    );
}

async fn dedupe_keys_coalesce_and_periodic_jobs_run_once_per_slot(db: Db) {
    let clock = clock();
    let random = Arc::new(SeededRandom::new(5));
    let mut tx = db.begin().await.unwrap();
    let first = jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!(1), &clock).dedupe("customer:1"),
        &clock,
        &*random,
    )
    .await
    .unwrap();
    let second = jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!(2), &clock).dedupe("customer:1"),
        &clock,
        &*random,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(first && !second);
    let job = jobs::claim(&db, "w", &clock).await.unwrap().unwrap();
    // Once started, the job no longer holds the key: a later change queues another run.
    let mut tx = db.begin().await.unwrap();
    let third = jobs::enqueue(
        &mut tx,
        NewJob::now("demo", json!(3), &clock).dedupe("customer:1"),
        &clock,
        &*random,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(third, "a change while the job runs is not lost");
    jobs::complete(&db, job.id).await.unwrap();
    let again = jobs::claim(&db, "w", &clock).await.unwrap().unwrap();
    assert_eq!(again.payload.0, json!(3));
    jobs::complete(&db, again.id).await.unwrap();

    let runs = Arc::new(AtomicUsize::new(0));
    let make_runner = || {
        let runs = runs.clone();
        Runner::new(db.clone(), Arc::new(clock.clone()), random.clone())
            .handle("tick", move |_| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .every("tick", Duration::minutes(15))
    };
    // Two replicas tick in the same slot: one run.
    let (a, b) = (make_runner(), make_runner());
    a.schedule_periodic().await.unwrap();
    b.schedule_periodic().await.unwrap();
    a.run_due().await.unwrap();
    b.run_due().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Later in the same slot, after the job finished and left the queue: still once.
    clock.advance(Duration::minutes(1));
    a.schedule_periodic().await.unwrap();
    a.run_due().await.unwrap();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "once per slot, not once per queue"
    );
    clock.advance(Duration::minutes(15));
    b.schedule_periodic().await.unwrap();
    b.run_due().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2, "next slot runs again");
}

async fn runner_retries_a_failing_handler(db: Db) {
    let clock = clock();
    let random = Arc::new(SeededRandom::new(6));
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let runner = Runner::new(db.clone(), Arc::new(clock.clone()), random.clone()).handle(
        "flaky",
        move |_| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err("first try fails".to_string())
                } else {
                    Ok(())
                }
            }
        },
    );
    let mut tx = db.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        NewJob::now("flaky", json!(null), &clock),
        &clock,
        &*random,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(runner.run_due().await.unwrap(), 1);
    assert_eq!(jobs::counts(&db).await.unwrap().queued, 1, "kept for retry");
    clock.advance(Duration::minutes(1));
    assert_eq!(runner.run_due().await.unwrap(), 1);
    assert_eq!(
        jobs::counts(&db).await.unwrap().queued,
        0,
        "done and removed"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

async fn audit_entries_commit_or_roll_back_with_the_change(db: Db) {
    let clock = clock();
    let random = SeededRandom::new(7);
    let customer = Uuid::now_v7();
    let user = Uuid::now_v7();
    let meta = RequestMeta {
        request_id: Some("req-1".into()),
        client_ip: Some("192.0.2.7".into()),
    };
    let event = AuditEvent::new(Actor::User(user), "session.revoked")
        .customer(customer)
        .target("session", "abc")
        .details(json!({"reason": "user"}))
        .personal(json!({"email": "a@example.com"}));

    let mut tx = db.begin().await.unwrap();
    audit::record(&mut tx, &event, &meta, &clock, &random)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(audit::for_customer(&db, customer, 10)
        .await
        .unwrap()
        .is_empty());

    let mut tx = db.begin().await.unwrap();
    audit::record(&mut tx, &event, &meta, &clock, &random)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let entries = audit::for_customer(&db, customer, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.actor_kind.as_str(), e.actor_id), ("user", Some(user)));
    assert_eq!(e.action, "session.revoked");
    assert_eq!(e.target_id.as_deref(), Some("abc"));
    assert_eq!(e.request_id.as_deref(), Some("req-1"));
    assert_eq!(e.client_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(e.details.0, json!({"reason": "user"}));
    assert_eq!(
        e.personal.as_ref().unwrap().0,
        json!({"email": "a@example.com"})
    );
    assert_eq!(e.occurred_at, clock.now_ms());
    assert!(
        audit::for_customer(&db, Uuid::now_v7(), 10)
            .await
            .unwrap()
            .is_empty(),
        "scoped by customer"
    );
}

async fn sessions_expire_are_scoped_by_account_and_purged(db: Db) {
    let clock = clock();
    let now = clock.now_ms();
    let hour = 3_600_000;
    let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let owner = |account_id, signed_in_at| {
        Some(sessions::SessionOwner {
            account_id,
            signed_in_at,
        })
    };
    assert!(sessions::create(&db, "s1", b"{}", now + hour, None, now)
        .await
        .unwrap());
    assert!(
        !sessions::create(&db, "s1", b"{}", now + hour, None, now)
            .await
            .unwrap(),
        "id collision detected"
    );
    assert!(
        sessions::save(&db, "s1", b"{}", now + hour, owner(alice, now))
            .await
            .unwrap()
    );
    assert!(
        !sessions::save(&db, "gone", b"{}", now + hour, owner(alice, now))
            .await
            .unwrap(),
        "saving a revoked session does not bring it back"
    );
    sessions::create(&db, "s2", b"{\"a\":1}", now + hour, owner(alice, now), now)
        .await
        .unwrap();
    sessions::create(
        &db,
        "s3",
        b"{}",
        now + 2 * hour,
        owner(bob, now - hour),
        now,
    )
    .await
    .unwrap();
    let any = 0;

    assert_eq!(
        sessions::load(&db, "s2", now, any)
            .await
            .unwrap()
            .unwrap()
            .data,
        b"{\"a\":1}"
    );
    assert!(sessions::touch(
        &db,
        "s1",
        Some("192.0.2.1"),
        Some("Firefox"),
        now,
        now + hour
    )
    .await
    .unwrap());
    assert!(
        !sessions::touch(
            &db,
            "s1",
            Some("192.0.2.1"),
            Some("Firefox"),
            now + 30_000,
            now + hour
        )
        .await
        .unwrap(),
        "at most once a minute"
    );
    assert!(sessions::touch(
        &db,
        "s1",
        Some("192.0.2.9"),
        Some("Firefox"),
        now + 61_000,
        now + hour
    )
    .await
    .unwrap());

    let listed = sessions::list_for_account(&db, alice, now, any)
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, "s1", "most recently used first");
    assert_eq!(listed[0].client_ip.as_deref(), Some("192.0.2.9"));
    assert_eq!(listed[0].signed_in_at, Some(now));

    assert!(
        sessions::load(&db, "s3", now, now - hour)
            .await
            .unwrap()
            .is_none(),
        "a session signed in before the absolute limit does not load, however recently used"
    );
    assert!(sessions::load(&db, "s3", now, now - hour - 1)
        .await
        .unwrap()
        .is_some());
    let mut tx = db.begin().await.unwrap();
    assert!(
        !sessions::revoke(&mut tx, bob, "s1").await.unwrap(),
        "bob cannot end alice's session"
    );
    assert_eq!(
        sessions::revoke_others(&mut tx, alice, "s1").await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert!(sessions::load(&db, "s1", now, any).await.unwrap().is_some());
    assert!(sessions::load(&db, "s2", now, any).await.unwrap().is_none());
    assert!(
        sessions::load(&db, "s3", now, any).await.unwrap().is_some(),
        "bob's session untouched"
    );

    assert!(
        sessions::load(&db, "s1", now + hour, any)
            .await
            .unwrap()
            .is_none(),
        "idle sessions do not load"
    );
    assert_eq!(
        sessions::purge_expired(&db, now + hour, any).await.unwrap(),
        1
    );
    assert_eq!(
        sessions::purge_expired(&db, now, now - hour).await.unwrap(),
        1,
        "bob's session is past its absolute lifetime"
    );
    sessions::create(&db, "s4", b"{}", now + hour, owner(bob, now), now)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    assert_eq!(sessions::revoke_all(&mut tx, bob).await.unwrap(), 1);
    tx.commit().await.unwrap();
}

async fn every_table_and_column_is_in_the_personal_data_registry(db: Db) {
    let mut schema = Vec::new();
    for table in db.table_names().await.unwrap() {
        let columns = db.column_names(&table).await.unwrap();
        assert!(!columns.is_empty(), "{table} has columns");
        schema.push((table, columns));
    }
    assert!(schema.len() >= 3, "the schema was read: {schema:?}");
    let problems = personal_data::check_against_schema(&schema);
    assert!(
        problems.is_empty(),
        "personal-data registry is out of date:\n{}",
        problems.join("\n")
    );
}

async fn sign_up_creates_user_customer_and_owner_membership_once(db: Db) {
    use domain::accounts::{
        password::{PasswordHasher, StoredPassword},
        signup::{self, SignUpForm, SignUpOutcome},
    };
    let clock = clock();
    let random = SeededRandom::new(8);
    let hasher = PasswordHasher::new(b"test pepper", 12, 1);
    let meta = RequestMeta {
        request_id: Some("r1".into()),
        client_ip: Some("192.0.2.1".into()),
    };
    let form = SignUpForm {
        email: "Alice@Example.com".into(),
        password: "plum tractor seventeen orbit".into(),
        display_name: "Alice".into(),
        age_confirmed: true,
        terms_accepted: true,
    };
    let valid = signup::validate(&form).unwrap();
    let outcome = signup::create_account(
        &db,
        &hasher,
        "https://portal.example",
        &clock,
        &random,
        &meta,
        &valid,
    )
    .await
    .unwrap();
    let SignUpOutcome::Created {
        user_id,
        customer_id,
    } = outcome
    else {
        panic!("{outcome:?}")
    };

    let (hash, scheme, terms, accepted, verified): (String, i32, String, i64, Option<i64>) = domain::on_db!(&db, pool =>
        sqlx::query_as("SELECT password_hash, password_scheme, terms_version, terms_accepted_at, email_verified_at FROM users WHERE id = $1")
            .bind(user_id).fetch_one(pool).await.unwrap());
    assert!(hash.starts_with("$2b$12$"));
    assert_eq!(
        (terms.as_str(), accepted),
        (signup::TERMS_VERSION, clock.now_ms())
    );
    assert_eq!(verified, None, "not verified until the link is followed");
    let stored = StoredPassword { scheme, hash };
    assert!(
        hasher
            .verify("plum tractor seventeen orbit", &stored)
            .await
            .unwrap()
            .matches
    );
    let role: String = domain::on_db!(&db, pool =>
        sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1 AND customer_id = $2")
            .bind(user_id).bind(customer_id).fetch_one(pool).await.unwrap());
    assert_eq!(role, "owner");
    let entries = audit::for_customer(&db, customer_id, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "account.created");
    assert_eq!(entries[0].client_ip.as_deref(), Some("192.0.2.1"));

    let again = signup::validate(&SignUpForm {
        email: " alice@EXAMPLE.com".into(),
        ..form.clone()
    })
    .unwrap();
    let outcome = signup::create_account(
        &db,
        &hasher,
        "https://portal.example",
        &clock,
        &random,
        &meta,
        &again,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        SignUpOutcome::EmailTaken { user_id },
        "same address, other case"
    );
    let users: i64 = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await.unwrap());
    let customers: i64 = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM customers").fetch_one(pool).await.unwrap());
    assert_eq!((users, customers), (1, 1), "nothing half-created");
}

/// Signs up `email` and returns the user id and the link token from the queued email.
async fn states_are_stored_as_their_text_and_unknown_text_fails_loudly(db: Db) {
    use domain::{accounts::profile::MemberRole, billing::subscriptions::SubscriptionStatus};
    let clock = clock();
    let (user, _) = sign_up(&db, &clock, "ada@example.com").await;
    let (as_text, as_role): (String, MemberRole) = domain::on_db!(&db, pool =>
        sqlx::query_as("SELECT role, role FROM memberships WHERE user_id = $1")
            .bind(user).fetch_one(pool).await.unwrap());
    assert_eq!((as_text.as_str(), as_role), ("owner", MemberRole::Owner));

    for status in SubscriptionStatus::ALL {
        let stored: String = domain::on_db!(&db, pool =>
            sqlx::query_scalar("SELECT CAST($1 AS TEXT)").bind(*status).fetch_one(pool).await.unwrap());
        assert_eq!(stored, status.as_str());
        let read: SubscriptionStatus = domain::on_db!(&db, pool =>
            sqlx::query_scalar("SELECT CAST($1 AS TEXT)").bind(&stored).fetch_one(pool).await.unwrap());
        assert_eq!(read, *status);
    }
    let unknown: Result<SubscriptionStatus, sqlx::Error> = domain::on_db!(&db, pool =>
        sqlx::query_scalar("SELECT CAST('on_hold' AS TEXT)").fetch_one(pool).await);
    let error = unknown
        .expect_err("an unknown state is not guessed")
        .to_string();
    assert!(
        error.contains("unknown SubscriptionStatus \"on_hold\""),
        "{error}"
    );
}

async fn account_actions_change_and_audit_in_one_service_call(db: Db) {
    use domain::{accounts::signin, billing::manual, sessions};
    let clock = clock();
    let portal = portal(&db, &clock);
    let meta = RequestMeta::default();
    let (alice, _) = sign_up(&db, &clock, "alice@example.com").await;
    let (bob, _) = sign_up(&db, &clock, "bob@example.com").await;
    let now = clock.now_ms();
    let owner = |account_id| {
        Some(sessions::SessionOwner {
            account_id,
            signed_in_at: now,
        })
    };
    for (id, who) in [
        ("a1", alice),
        ("a2", alice),
        ("a3", alice),
        ("a4", alice),
        ("b1", bob),
    ] {
        sessions::create(&db, id, b"{}", now + 3_600_000, owner(who), now)
            .await
            .unwrap();
    }
    let audited = |action: &'static str| {
        let db = db.clone();
        async move {
            let n: i64 = domain::on_db!(&db, pool => sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND actor_id = $2")
                .bind(action).bind(alice).fetch_one(pool).await.unwrap());
            n
        }
    };
    let live = |id: &'static str| {
        let db = db.clone();
        async move { sessions::load(&db, id, now, 0).await.unwrap().is_some() }
    };

    assert!(!sessions::end_one(&portal, &meta, alice, "b1")
        .await
        .unwrap());
    assert!(live("b1").await, "another account's session ends nothing");
    assert_eq!(
        audited("session.revoked").await,
        0,
        "and nothing is audited"
    );
    assert!(sessions::end_one(&portal, &meta, alice, "a2")
        .await
        .unwrap());
    assert!(!live("a2").await);
    assert_eq!(audited("session.revoked").await, 1);

    assert_eq!(
        sessions::end_others(&portal, &meta, alice, "a1")
            .await
            .unwrap(),
        2
    );
    assert!(live("a1").await && !live("a3").await && !live("a4").await && live("b1").await);
    assert_eq!(audited("session.revoked_others").await, 1);
    assert_eq!(
        sessions::end_others(&portal, &meta, alice, "a1")
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        audited("session.revoked_others").await,
        1,
        "nothing ended, nothing audited"
    );

    sessions::sign_out(&portal, &meta, alice, "a1")
        .await
        .unwrap();
    assert!(!live("a1").await);
    assert_eq!(audited("sign_out").await, 1);

    let failures = || {
        let db = db.clone();
        async move {
            let n: i32 = domain::on_db!(&db, pool => sqlx::query_scalar(
                "SELECT sign_in_failures FROM users WHERE id = $1")
                .bind(alice).fetch_one(pool).await.unwrap());
            n
        }
    };
    signin::second_factor_checked(&portal, &meta, alice, false)
        .await
        .unwrap();
    signin::second_factor_checked(&portal, &meta, alice, false)
        .await
        .unwrap();
    assert_eq!(failures().await, 2);
    assert_eq!(audited("sign_in.second_factor_failed").await, 2);
    signin::second_factor_checked(&portal, &meta, alice, true)
        .await
        .unwrap();
    assert_eq!(failures().await, 0, "a right code forgets the failures");
    assert_eq!(audited("sign_in.two_factor").await, 1);

    signin::signed_in_externally(&portal, &meta, alice, None, "oidc")
        .await
        .unwrap();
    assert_eq!(audited("sign_in.external").await, 1);

    let customer: Uuid = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT customer_id FROM memberships WHERE user_id = $1")
        .bind(alice).fetch_one(pool).await.unwrap());
    manual::request_manual(&portal, &meta, Actor::User(alice), customer)
        .await
        .unwrap();
    let entries = audit::for_customer(&db, customer, 10).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "billing.manual_requested"),
        "{entries:?}"
    );
}

async fn sign_up(db: &Db, clock: &ManualClock, email: &str) -> (Uuid, String) {
    use domain::accounts::{
        password::PasswordHasher,
        signup::{self, SignUpForm, SignUpOutcome},
    };
    let hasher = PasswordHasher::new(b"pepper", 12, 1);
    let form = SignUpForm {
        email: email.into(),
        password: "plum tractor seventeen orbit".into(),
        display_name: "Bob <b>".into(),
        age_confirmed: true,
        terms_accepted: true,
    };
    let valid = signup::validate(&form).unwrap();
    let outcome = signup::create_account(
        db,
        &hasher,
        "https://portal.example",
        clock,
        &OsRandom,
        &RequestMeta::default(),
        &valid,
    )
    .await
    .unwrap();
    let SignUpOutcome::Created { user_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    let texts: Vec<(String, String, String)> = domain::on_db!(db, pool =>
        sqlx::query_as("SELECT recipient, text_body, html_body FROM outbox_emails WHERE user_id = $1 ORDER BY created_at DESC")
            .bind(user_id).fetch_all(pool).await.unwrap());
    let (recipient, text, html) = texts
        .first()
        .expect("a verification email is queued")
        .clone();
    assert_eq!(recipient, email);
    assert!(
        html.contains("Bob &#60;b&#62;"),
        "names are escaped in HTML: {html}"
    );
    let start = text
        .find("https://portal.example/verify-email/")
        .expect("the link")
        + "https://portal.example/verify-email/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(token.len(), 64);
    (user_id, token)
}

async fn email_verification_links_work_once_and_expire(db: Db) {
    use domain::accounts::{email_tokens::TokenError, verification};
    let clock = clock();
    let random = SeededRandom::new(10);
    let meta = RequestMeta::default();
    let (alice, token) = sign_up(&db, &clock, "alice@example.com").await;
    let stored: i64 = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM email_tokens WHERE token_hash = $1")
        .bind(&token).fetch_one(pool).await.unwrap());
    assert_eq!(stored, 0, "only a hash of the token is stored");

    assert_eq!(
        verification::verify(
            &db,
            &token,
            "https://portal.example",
            &meta,
            &clock,
            &random
        )
        .await
        .unwrap(),
        Ok(alice)
    );
    let verified: Option<i64> = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT email_verified_at FROM users WHERE id = $1")
        .bind(alice).fetch_one(pool).await.unwrap());
    assert_eq!(verified, Some(clock.now_ms()));
    assert_eq!(
        verification::verify(
            &db,
            &token,
            "https://portal.example",
            &meta,
            &clock,
            &random
        )
        .await
        .unwrap(),
        Err(TokenError::Invalid),
        "single use"
    );
    assert_eq!(
        verification::verify(
            &db,
            "not-a-token",
            "https://portal.example",
            &meta,
            &clock,
            &random
        )
        .await
        .unwrap(),
        Err(TokenError::Invalid)
    );

    let (_bob, bob_token) = sign_up(&db, &clock, "bob@example.com").await;
    clock.advance(Duration::hours(25));
    assert_eq!(
        verification::verify(
            &db,
            &bob_token,
            "https://portal.example",
            &meta,
            &clock,
            &random
        )
        .await
        .unwrap(),
        Err(TokenError::Expired)
    );
}

async fn resend_is_rate_limited_and_unverified_accounts_go_after_seven_days(db: Db) {
    use domain::accounts::verification::{self, ResendError};
    let clock = clock();
    let random = SeededRandom::new(11);
    let (alice, alice_token) = sign_up(&db, &clock, "alice@example.com").await;
    let (carol, _) = sign_up(&db, &clock, "carol@example.com").await;
    // Sign-up sent one link; two more are allowed within the hour, then no more.
    assert_eq!(
        verification::resend(&db, carol, "https://portal.example", &clock, &random)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        verification::resend(&db, carol, "https://portal.example", &clock, &random)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        verification::resend(&db, carol, "https://portal.example", &clock, &random)
            .await
            .unwrap(),
        Err(ResendError::TooManyRequests)
    );
    clock.advance(Duration::minutes(61));
    assert_eq!(
        verification::resend(&db, carol, "https://portal.example", &clock, &random)
            .await
            .unwrap(),
        Ok(())
    );

    verification::verify(
        &db,
        &alice_token,
        "https://portal.example",
        &RequestMeta::default(),
        &clock,
        &random,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        verification::resend(&db, alice, "https://portal.example", &clock, &random)
            .await
            .unwrap(),
        Err(ResendError::AlreadyVerified)
    );

    clock.advance(Duration::days(6));
    assert_eq!(
        verification::purge_unverified(&db, &clock, &random)
            .await
            .unwrap(),
        0,
        "not yet"
    );
    clock.advance(Duration::days(1));
    assert_eq!(
        verification::purge_unverified(&db, &clock, &random)
            .await
            .unwrap(),
        1
    );
    let left: Vec<Uuid> = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT id FROM users").fetch_all(pool).await.unwrap());
    assert_eq!(left, vec![alice], "the verified account stays");
    let customers: i64 = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM customers").fetch_one(pool).await.unwrap());
    assert_eq!(customers, 1, "carol's customer went with her");
    let mail_for_carol: i64 = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM outbox_emails WHERE user_id = $1")
        .bind(carol).fetch_one(pool).await.unwrap());
    assert_eq!(mail_for_carol, 0);
}

async fn failed_sign_ins_slow_an_account_down_without_locking_it(db: Db) {
    use domain::accounts::throttle;
    let clock = clock();
    let (alice, _) = sign_up(&db, &clock, "alice@example.com").await;
    let (bob, _) = sign_up(&db, &clock, "bob@example.com").await;
    let fail = |user| {
        let (db, clock) = (db.clone(), clock.clone());
        async move {
            let mut tx = db.begin().await.unwrap();
            throttle::record_failure(&mut tx, user, &clock)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    };
    for _ in 0..4 {
        fail(alice).await;
    }
    assert_eq!(
        throttle::account_may_try(&db, alice, &clock).await.unwrap(),
        Ok(()),
        "four failures are free"
    );
    fail(alice).await;
    assert_eq!(
        throttle::account_may_try(&db, alice, &clock).await.unwrap(),
        Err(std::time::Duration::from_secs(1))
    );
    assert_eq!(
        throttle::account_may_try(&db, bob, &clock).await.unwrap(),
        Ok(()),
        "per account"
    );
    clock.advance(Duration::seconds(1));
    assert_eq!(
        throttle::account_may_try(&db, alice, &clock).await.unwrap(),
        Ok(())
    );
    fail(alice).await;
    assert_eq!(
        throttle::account_may_try(&db, alice, &clock).await.unwrap(),
        Err(std::time::Duration::from_secs(2)),
        "doubling"
    );
    let mut tx = db.begin().await.unwrap();
    throttle::clear_failures(&mut tx, alice).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        throttle::account_may_try(&db, alice, &clock).await.unwrap(),
        Ok(())
    );
}

async fn sign_in_answers_alike_for_unknown_and_wrong_and_upgrades_old_hashes(db: Db) {
    use domain::accounts::{
        password::PasswordHasher,
        signin::{sign_in, SignInOutcome},
    };
    let clock = clock();
    let random = SeededRandom::new(12);
    let meta = RequestMeta {
        request_id: None,
        client_ip: Some("192.0.2.5".into()),
    };
    let (alice, _) = sign_up(&db, &clock, "alice@example.com").await;
    let hasher = PasswordHasher::new(b"pepper", 12, 1);
    let pw = "plum tractor seventeen orbit";

    let ok = sign_in(
        &db,
        &hasher,
        &clock,
        &random,
        &meta,
        " ALICE@example.com ",
        pw,
    )
    .await
    .unwrap();
    let SignInOutcome::SignedIn {
        user_id,
        customer_id,
        needs_second_factor,
    } = ok
    else {
        panic!("{ok:?}")
    };
    assert_eq!(user_id, alice);
    assert!(customer_id.is_some());
    assert!(!needs_second_factor);

    assert_eq!(
        sign_in(
            &db,
            &hasher,
            &clock,
            &random,
            &meta,
            "alice@example.com",
            "wrong"
        )
        .await
        .unwrap(),
        SignInOutcome::Refused
    );
    assert_eq!(
        sign_in(
            &db,
            &hasher,
            &clock,
            &random,
            &meta,
            "nobody@example.com",
            pw
        )
        .await
        .unwrap(),
        SignInOutcome::Refused
    );

    // Another pepper: the same database refuses every sign-in.
    let other = PasswordHasher::new(b"another pepper", 12, 1);
    assert_eq!(
        sign_in(&db, &other, &clock, &random, &meta, "alice@example.com", pw)
            .await
            .unwrap(),
        SignInOutcome::Refused
    );

    // A hash from an older, cheaper configuration is upgraded at sign-in.
    let stronger = PasswordHasher::new(b"pepper", 13, 1);
    assert!(matches!(
        sign_in(
            &db,
            &stronger,
            &clock,
            &random,
            &meta,
            "alice@example.com",
            pw
        )
        .await
        .unwrap(),
        SignInOutcome::SignedIn { .. }
    ));
    let hash: String = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(alice).fetch_one(pool).await.unwrap());
    assert!(hash.starts_with("$2b$13$"), "{hash}");

    let actions: Vec<String> = domain::on_db!(&db, pool => sqlx::query_scalar("SELECT action FROM audit_log ORDER BY occurred_at, id")
        .fetch_all(pool).await.unwrap());
    assert_eq!(actions.iter().filter(|a| *a == "sign_in.failed").count(), 3);
    assert_eq!(
        actions.iter().filter(|a| *a == "sign_in.password").count(),
        2
    );
    let logged_passwords: i64 = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE CAST(details AS TEXT) LIKE '%tractor%' OR CAST(personal AS TEXT) LIKE '%tractor%'")
        .fetch_one(pool).await.unwrap());
    assert_eq!(logged_passwords, 0, "no password in the audit log");
}

async fn ping_reports_a_reachable_database(db: Db) {
    assert!(db.ping().await);
}

fn portal(db: &Db, clock: &ManualClock) -> domain::Portal {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    domain::Portal {
        db: db.clone(),
        clock: Arc::new(clock.clone()),
        random: Arc::new(SeededRandom::new(9)),
        plans: Arc::new(domain::plans::PlanCatalog::sample()),
        regions: Arc::new(domain::homeservers::regions::RegionCatalog::sample()),
        public_url: "https://portal.example".into(),
        passwords: domain::accounts::password::PasswordHasher::new(b"pepper", 12, 1),
        secret_box: Arc::new(
            domain::accounts::totp::SecretBox::from_spec(&format!("k1:{key}")).unwrap(),
        ),
        rates: Arc::new(domain::billing::tax::VatRates::sample()),
        seller: Arc::new(domain::billing::Seller {
            country: "FI".into(),
            vat_number: Some("FI12345671".into()),
            ..Default::default()
        }),
        payments: None,
        vies: None,
        dunning: domain::billing::dunning::Policy::default(),
        invoice_link_days: None,
        manual_invoice_lead_days: 14,
        hosting: Arc::new(domain::homeservers::lifecycle::Hosting::new(
            domain::homeservers::provisioner::Provisioners::new(),
            "localhost",
            20000..=20999,
        )),
        link_opens: Default::default(),
        link_lookups: Default::default(),
    }
}

async fn subjects_to(db: &Db, email: &str) -> Vec<String> {
    domain::on_db!(db, pool => sqlx::query_scalar(
        "SELECT subject FROM outbox_emails WHERE recipient = $1 ORDER BY created_at, id"
    )
    .bind(email)
    .fetch_all(pool)
    .await
    .unwrap())
}

async fn two_factor_codes_work_once_and_recovery_codes_are_single_use(db: Db) {
    use domain::accounts::{
        profile,
        totp::current_code,
        two_factor::{self, TwoFactorError},
    };
    let clock = clock();
    let portal = portal(&db, &clock);
    let meta = RequestMeta::default();
    let (user_id, _) = sign_up(&db, &clock, "tess@example.com").await;
    let now = || (clock.now_ms() / 1000) as u64;

    assert_eq!(
        two_factor::confirm(&portal, &meta, user_id, "123456")
            .await
            .unwrap(),
        Err(TwoFactorError::NotStarted)
    );
    assert!(
        two_factor::enrolment(&portal, user_id)
            .await
            .unwrap()
            .is_none(),
        "reading starts nothing"
    );
    let enrolment = two_factor::start_enrolment(&portal, user_id).await.unwrap();
    assert!(enrolment.qr_svg.starts_with("<?xml") || enrolment.qr_svg.contains("<svg"));
    let again = two_factor::enrolment(&portal, user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.secret, enrolment.secret,
        "a reload shows the same key"
    );
    let stored: Option<String> = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT totp_pending_secret FROM users WHERE id = $1"
    ).bind(user_id).fetch_one(pool).await.unwrap());
    let stored = stored.unwrap();
    assert!(stored.starts_with("k1:"), "sealed at rest");
    assert!(!stored.contains(&enrolment.key_text.replace(' ', "")));

    let wrong = if current_code(&enrolment.secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert_eq!(
        two_factor::confirm(&portal, &meta, user_id, wrong)
            .await
            .unwrap(),
        Err(TwoFactorError::WrongCode)
    );
    let code = current_code(&enrolment.secret, now());
    let codes = two_factor::confirm(&portal, &meta, user_id, &code)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        two_factor::start_enrolment(&portal, user_id).await,
        Err(domain::accounts::signup::AccountError::TwoFactorAlreadyOn)
    ));
    assert_eq!(codes.len(), 10);
    assert!(profile::load(&db, user_id)
        .await
        .unwrap()
        .unwrap()
        .two_factor_enabled());
    assert!(subjects_to(&db, "tess@example.com")
        .await
        .contains(&"Two-factor authentication is on".to_string()));

    // The confirming code's time step is used up; the next step's code works once.
    assert!(!two_factor::check_code(&portal, user_id, &code)
        .await
        .unwrap());
    clock.advance(Duration::seconds(30));
    let next = current_code(&enrolment.secret, now());
    assert!(two_factor::check_code(&portal, user_id, &next)
        .await
        .unwrap());
    assert!(
        !two_factor::check_code(&portal, user_id, &next)
            .await
            .unwrap(),
        "no replay"
    );

    // Recovery codes: any case and spacing, each once.
    let spaced = codes[0].to_uppercase().replace('-', " ");
    assert!(two_factor::check_code(&portal, user_id, &spaced)
        .await
        .unwrap());
    assert!(!two_factor::check_code(&portal, user_id, &codes[0])
        .await
        .unwrap());
    assert_eq!(
        two_factor::recovery_codes_left(&db, user_id).await.unwrap(),
        9
    );
    let (other_user, _) = sign_up(&db, &clock, "other@example.com").await;
    assert!(
        !two_factor::check_code(&portal, other_user, &codes[1])
            .await
            .unwrap(),
        "one account's codes do nothing for another"
    );

    // Rotating the key ring: the secret sealed under the old key still works, and is sealed
    // again under the new one when used.
    use base64::Engine;
    let new_key = base64::engine::general_purpose::STANDARD.encode([8u8; 32]);
    let old_key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let mut rotated = portal.clone();
    rotated.secret_box = Arc::new(
        domain::accounts::totp::SecretBox::from_spec(&format!("k2:{new_key},k1:{old_key}"))
            .unwrap(),
    );
    clock.advance(Duration::seconds(30));
    let code = current_code(&enrolment.secret, now());
    assert!(two_factor::check_code(&rotated, user_id, &code)
        .await
        .unwrap());
    let stored: Option<String> = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT totp_secret FROM users WHERE id = $1"
    ).bind(user_id).fetch_one(pool).await.unwrap());
    assert!(
        stored.unwrap().starts_with("k2:"),
        "sealed again under the current key"
    );

    two_factor::disable(&portal, &meta, user_id).await.unwrap();
    assert!(!profile::load(&db, user_id)
        .await
        .unwrap()
        .unwrap()
        .two_factor_enabled());
    assert!(!two_factor::check_code(&portal, user_id, &codes[1])
        .await
        .unwrap());
    assert_eq!(
        two_factor::recovery_codes_left(&db, user_id).await.unwrap(),
        0
    );
}

async fn password_reset_links_work_once_and_end_every_session(db: Db) {
    use domain::accounts::{
        email_tokens::TokenError,
        password::PasswordProblem,
        reset::{self, ResetRefusal},
        signin::{sign_in, SignInOutcome},
    };
    let clock = clock();
    let portal = portal(&db, &clock);
    let meta = RequestMeta::default();
    let (user_id, _) = sign_up(&db, &clock, "rita@example.com").await;
    let now = clock.now_ms();
    sessions::create(
        &db,
        "phone",
        b"{}",
        now + 3_600_000,
        Some(sessions::SessionOwner {
            account_id: user_id,
            signed_in_at: now,
        }),
        now,
    )
    .await
    .unwrap();

    // Unknown addresses get nothing, and no error either.
    reset::request(&portal, &meta, "nobody@example.com")
        .await
        .unwrap();
    assert!(subjects_to(&db, "nobody@example.com").await.is_empty());
    reset::request(&portal, &meta, " RITA@example.com ")
        .await
        .unwrap();
    let text: String = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'rita@example.com' AND subject = 'Choose a new password'"
    ).fetch_one(pool).await.unwrap());
    let start = text.find("/reset-password/").unwrap() + "/reset-password/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();

    // A refused password leaves the link usable.
    assert_eq!(
        reset::complete(&portal, &meta, &token, "short")
            .await
            .unwrap(),
        Err(ResetRefusal::Password(PasswordProblem::TooShort))
    );
    assert_eq!(reset::link_is_live(&portal, &token).await.unwrap(), Ok(()));
    let fresh = "saffron kettle mountain echo";
    assert_eq!(
        reset::complete(&portal, &meta, &token, fresh)
            .await
            .unwrap(),
        Ok(user_id)
    );
    assert_eq!(
        reset::complete(&portal, &meta, &token, fresh)
            .await
            .unwrap(),
        Err(ResetRefusal::Link(TokenError::Invalid))
    );
    assert!(
        sessions::load(&db, "phone", now, 0)
            .await
            .unwrap()
            .is_none(),
        "every session ended"
    );
    assert!(subjects_to(&db, "rita@example.com")
        .await
        .contains(&"Your password was changed".to_string()));
    let outcome = sign_in(
        &db,
        &portal.passwords,
        &clock,
        &OsRandom,
        &meta,
        "rita@example.com",
        fresh,
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, SignInOutcome::SignedIn { .. }),
        "{outcome:?}"
    );

    // Links expire after an hour; at most three are sent an hour.
    reset::request(&portal, &meta, "rita@example.com")
        .await
        .unwrap();
    reset::request(&portal, &meta, "rita@example.com")
        .await
        .unwrap();
    reset::request(&portal, &meta, "rita@example.com")
        .await
        .unwrap();
    let sent = subjects_to(&db, "rita@example.com")
        .await
        .iter()
        .filter(|s| *s == "Choose a new password")
        .count();
    assert_eq!(sent, 3, "the fourth request within the hour sends nothing");
    let latest: String = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'rita@example.com' AND subject = 'Choose a new password' ORDER BY created_at DESC, id DESC"
    ).fetch_all(pool).await.unwrap().into_iter().next().unwrap());
    let start = latest.find("/reset-password/").unwrap() + "/reset-password/".len();
    let token: String = latest[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    clock.advance(Duration::minutes(61));
    assert_eq!(
        reset::link_is_live(&portal, &token).await.unwrap(),
        Err(TokenError::Expired)
    );
}

async fn email_change_confirms_the_new_address_and_tells_the_old_one(db: Db) {
    use domain::accounts::{
        email_change::{self, ChangeRefusal, ConfirmRefusal},
        email_tokens::TokenError,
        profile,
    };
    let clock = clock();
    let portal = portal(&db, &clock);
    let meta = RequestMeta::default();
    let (user_id, _) = sign_up(&db, &clock, "old@example.com").await;
    let (other_id, _) = sign_up(&db, &clock, "taken@example.com").await;

    assert_eq!(
        email_change::request(&portal, &meta, user_id, "not an address")
            .await
            .unwrap(),
        Err(ChangeRefusal::Invalid)
    );
    assert_eq!(
        email_change::request(&portal, &meta, user_id, " OLD@example.com")
            .await
            .unwrap(),
        Err(ChangeRefusal::SameAsNow)
    );
    // An address another account holds without having confirmed it is not taken: the
    // confirmation link goes out (following it would free the address).
    email_change::request(&portal, &meta, user_id, "taken@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(subjects_to(&db, "taken@example.com")
        .await
        .contains(&"Confirm your new email address".to_string()));
    domain::on_db!(&db, pool => sqlx::query("DELETE FROM outbox_emails WHERE recipient = 'taken@example.com'")
        .execute(pool).await.map(|_| ()).unwrap());
    domain::on_db!(&db, pool => sqlx::query("UPDATE users SET email_verified_at = 1 WHERE id = $1")
        .bind(other_id).execute(pool).await.map(|_| ()).unwrap());
    // A confirmed address of another account: the same answer, and its owner hears of it; no
    // link goes out.
    clock.advance(Duration::minutes(61));
    email_change::request(&portal, &meta, user_id, "taken@example.com")
        .await
        .unwrap()
        .unwrap();
    let taken = subjects_to(&db, "taken@example.com").await;
    assert!(taken.contains(&"Someone tried to sign up with your address".to_string()));
    assert!(!taken.contains(&"Confirm your new email address".to_string()));

    email_change::request(&portal, &meta, user_id, "New@Example.com")
        .await
        .unwrap()
        .unwrap();
    let text: String = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'New@Example.com'"
    ).fetch_one(pool).await.unwrap());
    let start = text.find("/confirm-email/").unwrap() + "/confirm-email/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(
        profile::load(&db, user_id)
            .await
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("old@example.com"),
        "nothing changes before the link is followed"
    );
    assert_eq!(
        email_change::confirm(&portal, &meta, &token).await.unwrap(),
        Ok(user_id)
    );
    let account = profile::load(&db, user_id).await.unwrap().unwrap();
    assert_eq!(account.email.as_deref(), Some("New@Example.com"));
    assert!(account.email_verified());
    assert!(subjects_to(&db, "old@example.com")
        .await
        .contains(&"Your email address was changed".to_string()));
    assert_eq!(
        email_change::confirm(&portal, &meta, &token).await.unwrap(),
        Err(ConfirmRefusal::Link(TokenError::Invalid))
    );

    // A link for an address someone else took meanwhile does nothing.
    email_change::request(&portal, &meta, other_id, "free@example.com")
        .await
        .unwrap()
        .unwrap();
    let text: String = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'free@example.com'"
    ).fetch_one(pool).await.unwrap());
    let start = text.find("/confirm-email/").unwrap() + "/confirm-email/".len();
    let token: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    email_change::request(&portal, &meta, user_id, "free@example.com")
        .await
        .unwrap()
        .unwrap();
    let mine: String = domain::on_db!(&db, pool => sqlx::query_scalar(
        "SELECT text_body FROM outbox_emails WHERE recipient = 'free@example.com' AND user_id = $1"
    ).bind(user_id).fetch_one(pool).await.unwrap());
    let start = mine.find("/confirm-email/").unwrap() + "/confirm-email/".len();
    let my_token: String = mine[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    assert_eq!(
        email_change::confirm(&portal, &meta, &my_token)
            .await
            .unwrap(),
        Ok(user_id)
    );
    assert_eq!(
        email_change::confirm(&portal, &meta, &token).await.unwrap(),
        Err(ConfirmRefusal::Taken)
    );
    assert_eq!(
        profile::load(&db, other_id)
            .await
            .unwrap()
            .unwrap()
            .email
            .as_deref(),
        Some("taken@example.com")
    );
}

/// The customer whose owner is `user`.
async fn customer_of(db: &Db, user: Uuid) -> Uuid {
    domain::on_db!(db, pool => sqlx::query_scalar(
        "SELECT customer_id FROM memberships WHERE user_id = $1"
    )
    .bind(user)
    .fetch_one(pool)
    .await
    .unwrap())
}

async fn billing_details_keep_a_history_of_every_change_scoped_by_customer(db: Db) {
    use domain::billing::{
        details::{self, BillingForm},
        tax::VatRates,
    };
    let clock = clock();
    let portal = portal(&db, &clock);
    let meta = RequestMeta::default();
    let rates = VatRates::sample();
    let (ada, _) = sign_up(&db, &clock, "ada@example.com").await;
    let (bob, _) = sign_up(&db, &clock, "bob@example.com").await;
    let (customer, other) = (customer_of(&db, ada).await, customer_of(&db, bob).await);
    let mut form = BillingForm {
        name: "Ada Lovelace".into(),
        address_line1: "Unter den Linden 1".into(),
        postal_code: "10117".into(),
        city: "Berlin".into(),
        country: "DE".into(),
        billing_email: "billing@example.com".into(),
        ..Default::default()
    };
    let first = details::validate(&form, &rates).unwrap();
    let changed = details::save(&portal, &meta, Actor::User(ada), customer, &first)
        .await
        .unwrap();
    assert_eq!(changed.len(), 6, "{changed:?}");
    assert_eq!(
        details::load(&db, customer).await.unwrap(),
        Some(first.clone())
    );
    assert!(
        details::save(&portal, &meta, Actor::User(ada), customer, &first)
            .await
            .unwrap()
            .is_empty(),
        "saving the same details writes nothing"
    );

    clock.advance(Duration::minutes(5));
    form.company = "Analytical Engines GmbH".into();
    form.vat_number = "DE123456789".into();
    let staff = Uuid::now_v7();
    let second = details::validate(&form, &rates).unwrap();
    let changed = details::save(&portal, &meta, Actor::Staff(staff), customer, &second)
        .await
        .unwrap();
    assert_eq!(changed, vec!["company", "vat_number"]);
    let history = details::history(&db, customer).await.unwrap();
    assert_eq!(history.len(), 8);
    let vat = history.iter().find(|h| h.field == "vat_number").unwrap();
    assert_eq!(vat.old_value, None);
    assert_eq!(vat.new_value.as_deref(), Some("DE123456789"));
    assert_eq!(vat.actor_kind, "staff");
    assert_eq!(vat.actor_id, Some(staff));
    assert_eq!(history[0].changed_at, clock.now_ms(), "newest first");
    let name = history.iter().find(|h| h.field == "name").unwrap();
    assert_eq!(
        (name.actor_kind.as_str(), name.actor_id),
        ("user", Some(ada))
    );

    assert_eq!(
        details::load(&db, other).await.unwrap(),
        None,
        "scoped by customer"
    );
    assert!(details::history(&db, other).await.unwrap().is_empty());
    let audit = audit::for_customer(&db, customer, 10).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "billing_details.changed"));
}

async fn server_names_are_reserved_once_and_never_reused(db: Db) {
    use domain::homeservers::names::{self, NameProblem};
    let clock = clock();
    let (ada, _) = sign_up(&db, &clock, "ada@example.com").await;
    let (bob, _) = sign_up(&db, &clock, "bob@example.com").await;
    let (a, b) = (customer_of(&db, ada).await, customer_of(&db, bob).await);
    let name = names::validate("Acme-Chat").unwrap();
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        names::reserve(&mut tx, &name, a, clock.now_ms())
            .await
            .unwrap(),
        Ok(())
    );
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        names::reserve(&mut tx, &name, b, clock.now_ms())
            .await
            .unwrap(),
        Err(NameProblem::Taken)
    );
    tx.rollback().await.unwrap();

    // A reservation rolled back with its order leaves the name free.
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        names::reserve(&mut tx, "other-name", b, clock.now_ms())
            .await
            .unwrap(),
        Ok(())
    );
    tx.rollback().await.unwrap();
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        names::reserve(&mut tx, "other-name", b, clock.now_ms())
            .await
            .unwrap(),
        Ok(())
    );
    tx.commit().await.unwrap();

    // The customer goes; the name stays taken.
    domain::on_db!(&db, pool => sqlx::query("DELETE FROM customers WHERE id = $1")
        .bind(a).execute(pool).await.map(|r| r.rows_affected()).unwrap());
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        names::reserve(&mut tx, &name, b, clock.now_ms())
            .await
            .unwrap(),
        Err(NameProblem::Taken)
    );
    tx.rollback().await.unwrap();
}

test_support::contract_tests!(
    states_are_stored_as_their_text_and_unknown_text_fails_loudly,
    account_actions_change_and_audit_in_one_service_call,
    jobs_enqueued_in_a_rolled_back_transaction_do_not_exist,
    a_claimed_job_is_not_claimed_twice_until_its_lease_expires,
    concurrent_claims_hand_each_job_to_one_runner,
    failed_jobs_retry_with_backoff_then_stay_failed,
    dedupe_keys_coalesce_and_periodic_jobs_run_once_per_slot,
    runner_retries_a_failing_handler,
    audit_entries_commit_or_roll_back_with_the_change,
    sessions_expire_are_scoped_by_account_and_purged,
    every_table_and_column_is_in_the_personal_data_registry,
    ping_reports_a_reachable_database,
    sign_up_creates_user_customer_and_owner_membership_once,
    email_verification_links_work_once_and_expire,
    resend_is_rate_limited_and_unverified_accounts_go_after_seven_days,
    failed_sign_ins_slow_an_account_down_without_locking_it,
    sign_in_answers_alike_for_unknown_and_wrong_and_upgrades_old_hashes,
    two_factor_codes_work_once_and_recovery_codes_are_single_use,
    password_reset_links_work_once_and_end_every_session,
    email_change_confirms_the_new_address_and_tells_the_old_one,
    billing_details_keep_a_history_of_every_change_scoped_by_customer,
    server_names_are_reserved_once_and_never_reused,
);
