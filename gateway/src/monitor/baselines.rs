//! The baselines file (`monitor.baselines_path`): what the monitor learnt,
//! kept across restarts so a restart does not forget the week.
//!
//! Written atomically: the bytes go to `PATH.tmp`, are synced, and the
//! temporary file is renamed over `PATH`, so a crash leaves the old file
//! or the new one, never half of one. The format (versioned, checked) is
//! the control crate's (`lanegate_control::monitor::persist`); a file that
//! does not decode is ignored with a warning and the monitor starts
//! learning again.

use std::io::Write;
use std::path::Path;

use lanegate_common::config::MonitorConfig;
use lanegate_control::monitor::Baselines;
use tracing::{info, warn};

/// The baselines in `path`; `None` (with a warning, unless there is no
/// file yet) when they cannot be read or decoded.
pub fn load(path: &Path, cfg: &MonitorConfig) -> Option<Baselines> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cannot read the baselines file; learning from scratch");
            return None;
        }
    };
    match Baselines::decode(cfg, &bytes) {
        Ok(b) => {
            info!(path = %path.display(), series = b.len(), "baselines loaded");
            Some(b)
        }
        Err(e) => {
            warn!(path = %path.display(), error = %e, "the baselines file is not usable; learning from scratch");
            None
        }
    }
}

/// Writes `bytes` to `path` atomically; a failure is logged and the old
/// file stays.
pub fn save(path: &Path, bytes: &[u8]) {
    if let Err(e) = write_atomic(path, bytes) {
        warn!(path = %path.display(), error = %e, "cannot write the baselines file");
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    // The rename itself is durable once the directory is synced.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_file_loads_and_a_corrupt_one_is_ignored() {
        let dir = std::env::temp_dir().join(format!("lanegate-baselines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("baselines.bin");
        let cfg = MonitorConfig::default();
        assert!(load(&path, &cfg).is_none(), "no file yet");
        let mut b = Baselines::new(&cfg);
        for t in 0..50 {
            b.observe("connections", 1_700_000_000 + t * 10, 100.0)
                .unwrap();
        }
        save(&path, &b.encode());
        assert!(
            !dir.join("baselines.bin.tmp").exists(),
            "renamed into place"
        );
        let back = load(&path, &cfg).expect("loads");
        assert_eq!(back.get("connections").unwrap().samples(), 50);
        std::fs::write(&path, b"not baselines").unwrap();
        assert!(load(&path, &cfg).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
