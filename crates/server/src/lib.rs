//! The composition root of user-engine: configuration, the choice of store and adapters,
//! and [`startup::Application`], which `user-engine serve` runs and the tests start
//! through the same code. The `user-engine` binary (`main.rs`) adds the command line.

pub mod config;
pub mod diagnose;
pub mod mailer;
pub mod relay;
pub mod settings;
pub mod startup;
pub mod store;
pub mod webhooks;
