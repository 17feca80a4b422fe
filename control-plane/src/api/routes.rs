//! REST handlers.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use super::model::{SessionPatch, SessionView, UserPlaneView};
use crate::cups::CupsError;
use crate::metrics::{Metrics, encode};
use crate::session::{DeleteError, SessionChangeError, Sessions};

/// State shared by the handlers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The session service.
    pub sessions: Sessions,
    /// The metrics.
    pub metrics: Metrics,
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/sessions", get(list_sessions))
        .route(
            "/sessions/{id}",
            get(get_session).delete(delete_session).patch(patch_session),
        )
        .route("/user-planes", get(list_user_planes))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

async fn list_sessions(State(st): State<ApiState>) -> Json<Vec<SessionView>> {
    Json(st.sessions.snapshot())
}

async fn get_session(State(st): State<ApiState>, Path(id): Path<u64>) -> Response {
    match st.sessions.view(id) {
        Some(v) => Json(v).into_response(),
        None => not_found(id),
    }
}

async fn delete_session(State(st): State<ApiState>, Path(id): Path<u64>) -> Response {
    match st.sessions.delete(id).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(DeleteError::NotFound(id)) => not_found(id),
    }
}

async fn patch_session(State(st): State<ApiState>, Path(id): Path<u64>, body: Bytes) -> Response {
    let change = match SessionPatch::parse(&body) {
        Ok(c) => c,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let changes_filter = change.filter_id.is_some();
    match st.sessions.change(id, change).await {
        Ok(v) => Json(v).into_response(),
        Err(SessionChangeError::NotFound(id)) => not_found(id),
        Err(e @ (SessionChangeError::NotActive { .. } | SessionChangeError::InProgress(_))) => {
            error(StatusCode::CONFLICT, e.to_string())
        }
        Err(e @ SessionChangeError::Interrupted(_)) => {
            error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
        Err(ref e @ SessionChangeError::UserPlane { ref source, .. }) => {
            let cause = match source {
                CupsError::Rejected { cause, .. } => Some(*cause),
                _ => None,
            };
            // The user plane has no ACL of that name: the request is at
            // fault, not the gateway.
            let status = if changes_filter && e.is_rule_failure() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::BAD_GATEWAY
            };
            (
                status,
                Json(serde_json::json!({
                    "error": e.to_string(),
                    "pfcp_cause": cause.map(u8::from),
                    "pfcp_cause_name": cause.map(|c| format!("{c:?}")),
                })),
            )
                .into_response()
        }
    }
}

async fn list_user_planes(State(st): State<ApiState>) -> Json<Vec<UserPlaneView>> {
    let views = st
        .sessions
        .user_planes()
        .iter()
        .map(|up| up.view(st.sessions.count_on(up.index())))
        .collect();
    Json(views)
}

async fn metrics(State(st): State<ApiState>) -> Response {
    st.sessions.refresh_session_gauge();
    let text = encode(&st.metrics.registry());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn not_found(id: u64) -> Response {
    error(StatusCode::NOT_FOUND, format!("no session with id {id}"))
}

/// `{"error": "<one line>"}` with `status`.
fn error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}
