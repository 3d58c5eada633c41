use server::config::{BillingCommand, Cli, Command, HomeserverCommand};
use std::{net::SocketAddr, process::ExitCode, sync::Arc, time::Instant};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let started = Instant::now();
    let cli = match Cli::load() {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    server::telemetry::init(&cli.config);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&cli.config).await,
        Command::Serve => serve(cli.config, started).await,
        Command::Billing { action } => billing(cli.config, action).await,
        Command::Homeservers { action } => homeservers(cli.config, action).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &server::config::Config) -> Result<(), String> {
    let db = server::connect(config).await?;
    db.migrate().await.map_err(|e| format!("migrations: {e}"))?;
    tracing::info!(backend = ?db.backend(), "migrations applied");
    Ok(())
}

/// The operator's manual billing commands: the same services the staff console will call,
/// recorded in the audit log as the system (the operator's shell account is not a portal user).
async fn billing(config: server::config::Config, action: BillingCommand) -> Result<(), String> {
    use domain::{
        audit::{Actor, RequestMeta},
        billing::manual,
    };
    let built = server::build(
        config,
        Arc::new(domain::SystemClock),
        Arc::new(domain::OsRandom),
    )
    .await?;
    let portal = &built.state.portal;
    let meta = RequestMeta {
        request_id: Some("cli".into()),
        client_ip: None,
    };
    let result = match action {
        BillingCommand::Manual { customer } => {
            async {
                let id = manual::customer_by_owner_email(&portal.db, &customer).await?;
                manual::switch_to_manual(portal, &meta, Actor::System, id).await?;
                println!("customer {id} now pays by bank transfer");
                Ok(())
            }
            .await
        }
        BillingCommand::Issue { subscription } => {
            manual::issue(portal, &meta, Actor::System, subscription)
                .await
                .map(|(id, number)| println!("issued invoice {number} ({id})"))
        }
        BillingCommand::MarkPaid { invoice } => {
            manual::mark_paid(portal, &meta, Actor::System, invoice)
                .await
                .map(|()| println!("invoice {invoice} paid"))
        }
        BillingCommand::Void { invoice } => manual::void(portal, &meta, Actor::System, invoice)
            .await
            .map(|()| println!("invoice {invoice} voided")),
    };
    built.state.portal.db.close().await;
    result.map_err(|e: manual::ManualError| e.to_string())
}

/// The operator's staff actions on a homeserver, recorded in the audit log as the system.
async fn homeservers(
    config: server::config::Config,
    action: HomeserverCommand,
) -> Result<(), String> {
    use domain::{
        audit::{Actor, RequestMeta},
        homeservers::lifecycle::{self, StaffAction},
    };
    let built = server::build(
        config,
        Arc::new(domain::SystemClock),
        Arc::new(domain::OsRandom),
    )
    .await?;
    let portal = &built.state.portal;
    let meta = RequestMeta {
        request_id: Some("cli".into()),
        client_ip: None,
    };
    let (id, action, done) = match action {
        HomeserverCommand::Retry { homeserver } => (
            homeserver,
            StaffAction::RetryProvisioning,
            "provisioning queued again",
        ),
        HomeserverCommand::Suspend { homeserver } => {
            (homeserver, StaffAction::Suspend, "suspended by staff")
        }
        HomeserverCommand::Resume { homeserver } => {
            (homeserver, StaffAction::Resume, "staff's suspension lifted")
        }
    };
    let result = lifecycle::staff(portal, &meta, Actor::System, id, action).await;
    built.state.portal.db.close().await;
    match result {
        Ok(true) => {
            println!("homeserver {id}: {done}");
            Ok(())
        }
        Ok(false) => Err(format!(
            "homeserver {id}: nothing to do (no such homeserver, or its state does not allow it)"
        )),
        Err(error) => Err(error.to_string()),
    }
}

async fn serve(mut config: server::config::Config, started: Instant) -> Result<(), String> {
    let wanted = config.site_addr;
    let listener = tokio::net::TcpListener::bind(wanted)
        .await
        .map_err(|e| format!("listen on {wanted}: {e}"))?;
    // With port 0 the system chooses one: the address (and the default public URL) is that port.
    let addr = listener
        .local_addr()
        .map_err(|e| format!("listen on {wanted}: {e}"))?;
    config.site_addr = addr;
    let poll = std::time::Duration::from_secs(config.job_poll_seconds.max(1));
    let built = server::build(
        config,
        Arc::new(domain::SystemClock),
        Arc::new(domain::OsRandom),
    )
    .await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let jobs = tokio::spawn(built.runner.run_until(poll, wait_for(stop_rx.clone())));
    let opens = tokio::spawn(write_link_opens(
        built.state.portal.clone(),
        stop_rx.clone(),
    ));
    let supervisor = tokio::spawn(built.supervisor.run_until(wait_for(stop_rx)));
    tracing::info!(
        %addr,
        public_url = %built.state.config.public_url(),
        backend = ?built.state.portal.db.backend(),
        startup_ms = started.elapsed().as_millis() as u64,
        "portal ready"
    );
    let app = built
        .router
        .into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    let _ = stop_tx.send(true);
    let _ = jobs.await;
    let _ = opens.await;
    let _ = supervisor.await;
    built.state.portal.db.close().await;
    tracing::info!("portal stopped");
    served.map_err(|e| format!("server: {e}"))
}

/// Writes the invoice-link opens this replica buffered, every two seconds and once more at
/// shutdown.
async fn write_link_opens(portal: domain::Portal, stop: tokio::sync::watch::Receiver<bool>) {
    let stopped = wait_for(stop);
    tokio::pin!(stopped);
    loop {
        let done = tokio::select! {
            _ = &mut stopped => true,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => false,
        };
        if let Err(error) = portal.link_opens.flush(&portal.db).await {
            tracing::warn!(%error, "invoice link opens could not be written; kept for the next try");
        }
        if done {
            break;
        }
    }
}

async fn wait_for(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// SIGTERM (from an orchestrator) or Ctrl-C: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
