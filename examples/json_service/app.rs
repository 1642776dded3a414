//! A small JSON service: todos in the lifespan state, a `Router` of handlers, JSON in and
//! out, and an auth middleware in the short `from_fn` form.

use asgi::prelude::*;
use asgi::server::router::get;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// The token that writes need. A real service reads it from its configuration.
pub(crate) const TOKEN: &str = "Bearer let-me-in";
/// The most todos kept, so that clients cannot grow the server's memory without bound.
pub(crate) const MAX_TODOS: usize = 1000;
/// The largest request body read, plenty for a title.
const MAX_BODY: usize = 16 * 1024;

#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Todo {
    pub(crate) id: usize,
    pub(crate) title: String,
}

/// The store, shared with every request through the lifespan state.
type Todos = std::sync::Arc<Mutex<Vec<Todo>>>;

async fn list(request: Request) -> Result<Response, HttpError> {
    let todos = request.state().try_get::<Todos>()?.lock().await;
    Ok(Response::json(&*todos)?)
}

async fn show(request: Request) -> Result<Response, HttpError> {
    let id: usize = request.param_as("id")?;
    let todos = request.state().try_get::<Todos>()?.lock().await;
    let todo = todos.iter().find(|todo| todo.id == id);
    let todo = todo.ok_or_else(|| HttpError::not_found(format!("no todo {id}")))?;
    Ok(Response::json(todo)?)
}

async fn create(mut request: Request) -> Result<Response, HttpError> {
    #[derive(Deserialize)]
    struct NewTodo {
        title: String,
    }
    let new: NewTodo = request.json(MAX_BODY).await?;
    let mut todos = request.state().try_get::<Todos>()?.lock().await;
    if todos.len() >= MAX_TODOS {
        return Err(HttpError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "too many todos",
        ));
    }
    let todo = Todo {
        id: todos.len() + 1,
        title: new.title,
    };
    todos.push(todo.clone());
    Ok(Response::json(&todo)?.status(StatusCode::CREATED))
}

/// Fills the state at startup: the store starts empty.
async fn lifespan(scope: Scope, mut receive: Receiver, mut send: Sender) -> Result<(), Error> {
    let Scope::Lifespan(lifespan) = scope else {
        return Ok(());
    };
    if let ReceiveEvent::LifespanStartup = receive.recv().await {
        lifespan.state.insert(Todos::default())?;
        send.send(SendEvent::LifespanStartupComplete).await?;
    }
    if let ReceiveEvent::LifespanShutdown = receive.recv().await {
        send.send(SendEvent::LifespanShutdownComplete).await?;
    }
    Ok(())
}

/// Reads are open; writes need the token.
async fn auth(scope: Scope, receive: Receiver, mut send: Sender, next: Next) -> Result<(), Error> {
    if let Some(http) = scope.as_http() {
        let reads = http.method == Method::GET || http.method == Method::HEAD;
        let token = http.headers.get("authorization");
        if !reads && token.is_none_or(|token| token != TOKEN) {
            let refusal = Response::json_error(StatusCode::UNAUTHORIZED, "a token is needed");
            return refusal.send(&mut send).await;
        }
    }
    next.call(scope, receive, send).await
}

pub(crate) fn app() -> impl App {
    Router::new()
        .route("/todos", get(list).post(create))
        .route("/todos/{id}", get(show))
        .not_found(|_: Request| async {
            Response::json_error(StatusCode::NOT_FOUND, "no such route")
        })
        .lifespan(lifespan)
        .with(from_fn(auth))
}
