//! The REST API and `/metrics` (axum 0.8, one listener).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/sessions` | JSON array of [`SessionView`] |
//! | GET | `/sessions/{id}` | one [`SessionView`], 404 if unknown |
//! | DELETE | `/sessions/{id}` | 204, 404 if unknown |
//! | GET | `/user-planes` | JSON array of [`UserPlaneView`] |
//! | GET | `/metrics` | Prometheus text format |
//!
//! - [`model`]: the JSON types (shared with `vbngctl`).
//! - [`routes`]: the handlers and [`router`].

pub mod model;
pub mod routes;

pub use model::{SessionView, UsageView, UserPlaneView};
pub use routes::{ApiState, router, serve};
