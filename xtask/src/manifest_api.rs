//! TEMPORARY stand-in for the `manifest` crate while it is being written.
//!
//! Mirrors the API xtask uses: `Manifest::load`, `name`, `binaries`, `is_test_system`,
//! `payload`, and `ManifestError` with `Display` ("file:line:col: key: message") and `render`.
//! Replaced by `pub use manifest::{Manifest, ManifestError};` once that crate builds.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A loaded manifest (shim: only the fields xtask reads).
pub struct Manifest {
    name: String,
    binaries: Vec<(String, String)>,
    test: bool,
}

/// Why a manifest was refused (shim).
#[derive(Debug)]
pub struct ManifestError {
    file: PathBuf,
    message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:1:1: manifest: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for ManifestError {}

impl ManifestError {
    /// The error with the offending source shown (shim: just the message).
    pub fn render(&self, _source: &str) -> String {
        format!("error: {self}")
    }
}

impl Manifest {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let error = |message: String| ManifestError {
            file: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| error(e.to_string()))?;
        let name = value
            .get("name")
            .and_then(|v| v.as_str())
            .ok_or_else(|| error("missing `name`".into()))?
            .to_string();
        let test = value.get("test").and_then(|v| v.as_bool()).unwrap_or(false);
        let mut binaries = Vec::new();
        if let Some(servers) = value.get("server").and_then(|v| v.as_array()) {
            for server in servers {
                let field =
                    |key: &str| server.get(key).and_then(|v| v.as_str()).map(str::to_string);
                let server_name =
                    field("name").ok_or_else(|| error("server without name".into()))?;
                let package = field("binary").unwrap_or_else(|| server_name.clone());
                binaries.push((server_name, package));
            }
        }
        Ok(Self {
            name,
            binaries,
            test,
        })
    }

    /// The system's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// (server name, cargo package) of every server, in server order.
    pub fn binaries(&self) -> Vec<(String, String)> {
        self.binaries.clone()
    }

    /// Whether this manifest describes a test system.
    pub fn is_test_system(&self) -> bool {
        self.test
    }

    /// The boot payload (shim: a header and the images, no description).
    pub fn payload(&self, elves: &BTreeMap<String, Vec<u8>>) -> anyhow::Result<Vec<u8>> {
        let mut payload = b"HVBOOT01".to_vec();
        payload.extend_from_slice(&0u32.to_le_bytes());
        payload.extend_from_slice(&16u32.to_le_bytes());
        for (name, _) in &self.binaries {
            let elf = elves
                .get(name)
                .ok_or_else(|| anyhow::anyhow!("no ELF for server {name}"))?;
            payload.extend_from_slice(elf);
        }
        Ok(payload)
    }
}
