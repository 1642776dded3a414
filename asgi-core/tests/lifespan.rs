//! Lifespan: the app fills state at startup, the runner freezes and shares it; failure and
//! "no lifespan support" are told apart.

use asgi_core::host::lifespan::{Lifespan, Startup};
use asgi_core::{Error, LifespanState, ReceiveEvent, Receiver, Scope, SendEvent, Sender};

#[derive(Clone, Debug, PartialEq)]
struct Pool {
    url: String,
}

async fn with_state(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Lifespan(lifespan) = scope else {
        return Ok(());
    };
    loop {
        match receive.recv().await {
            ReceiveEvent::LifespanStartup => {
                lifespan.state.insert(Pool {
                    url: "postgres://db".into(),
                })?;
                send.send(SendEvent::LifespanStartupComplete).await?;
            }
            ReceiveEvent::LifespanShutdown => {
                send.send(SendEvent::LifespanShutdownComplete).await?;
                return Ok(());
            }
            other => return Err(Error::msg(format!("unexpected {}", other.type_name()))),
        }
    }
}

#[tokio::test]
async fn state_filled_at_startup_is_frozen_and_shared() {
    let Startup::Complete(lifespan) = Lifespan::startup(with_state).await else {
        panic!("startup did not complete");
    };
    let state = lifespan.state();
    assert_eq!(
        state.get::<Pool>(),
        Some(&Pool {
            url: "postgres://db".into()
        })
    );
    // Every connection gets a clone that sees the same values.
    let copy = state.clone();
    assert_eq!(copy.get::<Pool>(), state.get::<Pool>());
    assert!(lifespan.shutdown().await.is_ok());
}

#[tokio::test]
async fn writing_state_after_startup_fails() {
    let (tx, rx) = tokio::sync::oneshot::channel::<LifespanState>();
    let tx = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let app = move |scope: Scope, mut receive: Receiver, mut send: Sender| {
        let tx = tx.clone();
        async move {
            let Scope::Lifespan(lifespan) = scope else {
                return Ok(());
            };
            receive.recv().await;
            send.send(SendEvent::LifespanStartupComplete).await?;
            if let Some(tx) = tx.lock().unwrap().take() {
                let _ = tx.send(lifespan.state.clone());
            }
            receive.recv().await;
            send.send(SendEvent::LifespanShutdownComplete).await?;
            Ok::<(), Error>(())
        }
    };
    let Startup::Complete(lifespan) = Lifespan::startup(app).await else {
        panic!("startup did not complete");
    };
    let building = rx.await.unwrap();
    let err = building.insert(7u32).unwrap_err();
    assert!(err.is_state_frozen());
    assert!(lifespan.state().get::<u32>().is_none());
    lifespan.shutdown().await.unwrap();
}

#[tokio::test]
async fn startup_failed_reports_the_message() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::LifespanStartupFailed {
            message: "no database".into(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    match Lifespan::startup(app).await {
        Startup::Failed { message } => assert_eq!(message, "no database"),
        other => panic!("expected failure, got {other:?}"),
    }
}

#[tokio::test]
async fn app_returning_on_lifespan_scope_means_unsupported() {
    let app = |scope: Scope, _: Receiver, _: Sender| async move {
        match scope {
            Scope::Lifespan(_) => Ok(()),
            _ => Ok(()),
        }
    };
    assert!(matches!(
        Lifespan::startup(app).await,
        Startup::Unsupported { error: None }
    ));
}

#[tokio::test]
async fn app_erroring_on_lifespan_scope_means_unsupported_with_the_error() {
    let app = |_: Scope, _: Receiver, _: Sender| async move {
        Err::<(), Error>(Error::msg("lifespan not supported"))
    };
    match Lifespan::startup(app).await {
        Startup::Unsupported { error: Some(e) } => {
            assert_eq!(e.to_string(), "lifespan not supported")
        }
        other => panic!("expected unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_failed_is_an_error_with_the_message() {
    let app = |_: Scope, mut receive: Receiver, mut send: Sender| async move {
        receive.recv().await;
        send.send(SendEvent::LifespanStartupComplete).await?;
        receive.recv().await;
        send.send(SendEvent::LifespanShutdownFailed {
            message: "pool stuck".into(),
        })
        .await?;
        Ok::<(), Error>(())
    };
    let Startup::Complete(lifespan) = Lifespan::startup(app).await else {
        panic!("startup did not complete");
    };
    let err = lifespan.shutdown().await.unwrap_err();
    assert_eq!(err.to_string(), "lifespan shutdown failed: pool stuck");
}

#[tokio::test]
async fn startup_with_fills_and_freezes_the_callers_state() {
    let mine = LifespanState::new();
    let scope = asgi_core::scope::LifespanScope::new(mine.clone());
    let Startup::Complete(lifespan) = Lifespan::startup_with(with_state, scope).await else {
        panic!("startup did not complete");
    };
    assert!(mine.is_frozen());
    assert_eq!(mine.type_names(), [std::any::type_name::<Pool>()]);
    assert_eq!(
        lifespan.state().get::<Pool>().map(|p| p.url.as_str()),
        Some("postgres://db")
    );
    assert!(lifespan.shutdown().await.is_ok());
}
