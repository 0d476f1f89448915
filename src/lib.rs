//! mssante: the mail server of an MSSanté operator. See README.md for a tour and
//! ../shared/ARCHITECTURE.md for the design; each module explains itself at its top.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod blocking;
pub mod config;
pub mod delivery;
pub mod dev;
pub mod directory;
pub mod hardening;
pub mod identity;
pub mod imap;
pub mod listener;
pub mod pki;
pub mod pop3;
pub mod server;
pub mod smtp;
pub mod store;
pub mod tls;
pub mod trust;
pub mod web;
pub mod wire;
