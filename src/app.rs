//! What every command starts from: the configuration, the data directory and its store.
//!
//! The first command that opens a new data directory initialises it (store, key-encryption
//! key, and in dev mode the TEST PKI), so `domain add` and `user add` work before any `serve`.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, Mode};
use crate::pki::{PkiError, TestPki};
use crate::store::{Store, StoreError};

/// A command's failure: the message to print and the exit status.
#[derive(Debug)]
pub struct CliError {
    /// One line for the user.
    pub message: String,
    /// 2 for configuration errors, 1 otherwise.
    pub status: i32,
}

impl CliError {
    /// A failure with exit status 1.
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            status: 1,
        }
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError {
            message: e.to_string(),
            status: 2,
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<crate::blocking::TaskFailed> for CliError {
    fn from(e: crate::blocking::TaskFailed) -> Self {
        CliError::new(e.to_string())
    }
}

impl From<PkiError> for CliError {
    fn from(e: PkiError) -> Self {
        CliError::new(e.to_string())
    }
}

/// An opened data directory.
pub struct App {
    /// The configuration in force.
    pub config: Config,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Its store.
    pub store: Store,
    /// The national directory publisher (`[directory]`), if configured.
    pub directory: Option<crate::directory::Publisher>,
}

impl App {
    /// Loads the configuration (`--config`, or the dev default) and picks the data directory
    /// (`--data`, then the file's `data_dir`, then `./mssante-data`).
    pub fn configure(
        config_file: Option<&Path>,
        data: Option<&Path>,
    ) -> Result<(Config, PathBuf), CliError> {
        let config = match config_file {
            Some(path) => Config::load(path)?,
            None => Config::dev_default(),
        };
        let data_dir = data
            .map(Path::to_path_buf)
            .or_else(|| config.data_dir.as_ref().map(|d| d.get_ref().clone()))
            .unwrap_or_else(|| PathBuf::from("mssante-data"));
        Ok((config, data_dir))
    }

    /// Opens (initialising if new) the data directory.
    pub async fn open(config: Config, data_dir: PathBuf) -> Result<App, CliError> {
        let kek = config.kek_file.as_ref().map(|k| k.get_ref().as_path());
        let store = Store::open(&data_dir, kek)
            .await
            .map_err(|e| CliError::new(format!("data directory {}: {e}", data_dir.display())))?;
        let directory = crate::directory::Publisher::from_config(&config, store.clone())
            .map_err(CliError::new)?;
        let app = App {
            config,
            data_dir,
            store,
            directory,
        };
        if app.config.mode == Mode::Dev {
            let pki = TestPki::load_or_create(&app.store).await?;
            pki.write_public_files(&app.store, &app.pki_dir()).await?;
        }
        Ok(app)
    }

    /// Where the TEST PKI's public files are written.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// The TEST PKI (dev mode only).
    pub async fn test_pki(&self) -> Result<TestPki, CliError> {
        if self.config.mode != Mode::Dev {
            return Err(CliError::new(
                "the TEST PKI exists only in dev mode (mode = \"dev\")",
            ));
        }
        Ok(TestPki::load_or_create(&self.store).await?)
    }
}
