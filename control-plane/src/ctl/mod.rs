//! `vbngctl`: rendering API answers as aligned tables.
//!
//! - [`table`]: a minimal aligned-column table and the session / user
//!   plane tables built from the API's JSON views.

pub mod table;

pub use table::{Table, rate, sessions_table, user_planes_table};
