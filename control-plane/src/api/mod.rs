//! The REST API and `/metrics` (axum 0.8, one listener).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/sessions` | JSON array of [`SessionView`] |
//! | GET | `/sessions/{id}` | one [`SessionView`], 404 if unknown |
//! | DELETE | `/sessions/{id}` | 204, 404 if unknown |
//! | PATCH | `/sessions/{id}` | body [`SessionPatch`]; 200 with the updated [`SessionView`], see below |
//! | GET | `/user-planes` | JSON array of [`UserPlaneView`] |
//! | GET | `/metrics` | Prometheus text format |
//!
//! Errors are JSON `{"error": "<one line>"}`.
//!
//! # `PATCH /sessions/{id}`: live rate and ACL change
//!
//! ```text
//! {"rate": {"up_kbps": 20000, "down_kbps": 100000}}   peak rates, kbit/s
//! {"rate": null}                                      no limit
//! {"filter_id": "web-only"}                           user plane ACL "web-only"
//! {"filter_id": null}                                 no ACL
//! {"rate": null, "filter_id": "block-smtp"}           both at once
//! ```
//!
//! A key left out keeps its current value; at least one is required. The
//! control plane sends the session's user plane one PFCP Session
//! Modification Request carrying both parts, which the user plane takes or
//! refuses as a whole:
//! - `rate`: Update QER 1 carrying the MBR (an unlimited rate is sent as
//!   MBR UL = 0, DL = 0: 0 means "no limit", see [`crate::cups::program`]).
//!   A 0 in one direction lifts the limit in that direction only;
//!   `{"up_kbps": 0, "down_kbps": 0}` is the same as `null`. Rates up to
//!   2^40 - 1 kbit/s (the MBR field) are accepted.
//! - `filter_id`: Update PDR on both PDRs, deactivating the session's
//!   current ACL and activating the named one (an ACL of the user plane's
//!   ACL file); the session's Filter-Id (`aaa.filter_id`) becomes the name.
//!   The current name is not sent again.
//!
//! | status | when | body |
//! |---|---|---|
//! | 200 | the user plane accepted | the [`SessionView`], `rate` / `aaa.filter_id` updated |
//! | 400 | body is not valid JSON, has neither key, has unknown keys, a rate out of range or an empty `filter_id` | `{"error"}` naming what was expected |
//! | 404 | no session with this id | `{"error"}` |
//! | 409 | the session is not `active` (establishing, user plane down, deleting), or another change of it is in flight | `{"error"}` |
//! | 422 | the body has a `filter_id` and the user plane refused with PFCP cause 73 (Rule creation/modification failure): it has no ACL of that name | `{"error", "pfcp_cause": 73, "pfcp_cause_name": "RuleCreationModificationFailure"}` |
//! | 502 | the user plane refused otherwise (a PFCP cause) or did not answer | `{"error", "pfcp_cause": 64, "pfcp_cause_name": "RequestRejected"}`; both `null` on a timeout |
//! | 503 | the service shut down before the user plane answered | `{"error"}` |
//!
//! On every failure the session keeps its previous rate and ACL. Outcomes
//! of the PFCP exchange are counted in
//! `vbng_cp_session_modifications_total{result}` (`ok`, `refused`,
//! `timeout`).
//!
//! - [`model`]: the JSON types (shared with `vbngctl`).
//! - [`routes`]: the handlers and [`router`].

pub mod model;
pub mod routes;

pub use model::{RateView, SessionPatch, SessionView, UsageView, UserPlaneView};
pub use routes::{ApiState, router, serve};
