//! The stamp file: which packages the outputs were made from, by which `FORMAT` of
//! fetch-guest. One line per fact: `format N`, then `package NAME VERSION FILE` (Debian names,
//! versions and file names hold no spaces).

use std::path::Path;

use anyhow::{Context, bail};

/// The packages the outputs were made from, and the format they were made in.
#[derive(Debug, PartialEq, Eq)]
pub struct Stamp {
    pub format: u32,
    pub packages: Vec<StampedPackage>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StampedPackage {
    pub name: String,
    pub version: String,
    /// The .deb's file name in `debs/`.
    pub file: String,
}

impl Stamp {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut format = None;
        let mut packages = Vec::new();
        for line in text.lines() {
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                ["format", number] => format = Some(number.parse()?),
                ["package", name, version, file] => packages.push(StampedPackage {
                    name: name.to_string(),
                    version: version.to_string(),
                    file: file.to_string(),
                }),
                _ => bail!("stamp line {line:?}"),
            }
        }
        Ok(Self {
            format: format.context("stamp without a format line")?,
            packages,
        })
    }

    pub fn render(&self) -> String {
        let mut text = format!("format {}\n", self.format);
        for package in &self.packages {
            text += &format!(
                "package {} {} {}\n",
                package.name, package.version, package.file
            );
        }
        text
    }

    pub fn describe(&self) -> String {
        let packages = self
            .packages
            .iter()
            .map(|p| format!("{} {}", p.name, p.version));
        packages.collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::super::FORMAT;
    use super::*;

    #[test]
    fn stamp_round_trips_and_refuses_garbage() {
        let stamp = Stamp {
            format: FORMAT,
            packages: vec![StampedPackage {
                name: "busybox-static".into(),
                version: "1:1.35.0-4+deb12u1+b1".into(),
                file: "busybox-static_1%3a1.35.0-4+deb12u1+b1_arm64.deb".into(),
            }],
        };
        assert_eq!(Stamp::parse(&stamp.render()).unwrap(), stamp);
        assert!(Stamp::parse("package a b\n").is_err());
        assert!(Stamp::parse("package a b c\n").is_err(), "no format line");
    }
}
