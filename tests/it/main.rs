//! Integration tests: one binary (faster to link on small machines), one module per area.
//! They start the real Pushgateway and run the built `cost-exporter` binary; see
//! `support` for the helpers and README "Development" for what must be installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod ai;
mod architecture;
mod backfill;
mod cli;
mod cloudflare;
mod config_errors;
mod contract;
mod deploy;
mod docs;
mod e2e;
mod elevenlabs;
mod fixed;
mod fx;
mod google;
mod hardening;
mod hostinger;
mod monitoring;
mod outofbox;
mod ovh;
mod pushgateway;
mod report;
mod secrets;
mod supabase;
mod support;
mod vercel;
mod wasabi;
