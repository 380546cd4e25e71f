//! The JSON API (SPEC.md, "HTTP API"), one module per resource: `status`
//! (`/api/status`, `/metrics`, rendered by `metrics`), `recordings`,
//! `cameras` (listing and changing them), `users` (logging in and out, and
//! user management); `json` reads request bodies for them.

pub mod cameras;
pub mod json;
pub mod metrics;
pub mod recordings;
pub mod status;
pub mod users;
