//! vcp's pure control-plane logic. Nothing here does I/O or reads a clock:
//! every function takes the time it needs as an argument, and every type
//! is plain data (or an atomic counter, or an arc-swapped snapshot). The
//! supervisor's tasks drive it; tests drive it directly.

pub mod admission;
pub mod builtin;
pub mod constraints;
pub mod contribution;
pub mod dispatch;
pub mod histogram;
pub mod instance;
pub mod judgement;
pub mod mediate;
pub mod mediation;
pub mod module_view;
pub mod plane;
pub mod pricing;
pub mod reputation;
pub mod round;
pub mod settings;
pub mod stats;
pub mod view;
pub mod workflow;

use std::sync::Arc;

/// A module instance: `<control plane>/<module id>`.
pub type ModuleKey = Arc<str>;

pub fn module_key(plane: &str, module: &str) -> ModuleKey {
    Arc::from(format!("{plane}/{module}"))
}
