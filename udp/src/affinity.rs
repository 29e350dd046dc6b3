//! Pinning a thread to a CPU core (thread per core: each gateway core's loop
//! and its socket stay on one CPU, so caches and the NIC queue stay warm).

use super::SysError;

/// Pins the calling thread to `core` (0-based, as the OS numbers cores).
///
/// Returns [`SysError::NoSuchCore`] if the host has no such core (or the
/// process may not run on it), and [`SysError::PinRefused`] if the OS
/// refuses; never panics.
pub fn pin_current_thread(core: usize) -> Result<(), SysError> {
    let Some(ids) = core_affinity::get_core_ids() else {
        return Err(SysError::NoSuchCore {
            core,
            available: "the OS did not list the cores".into(),
        });
    };
    let Some(&id) = ids.iter().find(|id| id.id == core) else {
        let available = match (ids.first(), ids.last()) {
            (Some(first), Some(last)) => {
                format!(
                    "this process may use {} cores, {}..={}",
                    ids.len(),
                    first.id,
                    last.id
                )
            }
            _ => "this process may use no core".into(),
        };
        return Err(SysError::NoSuchCore { core, available });
    };
    if core_affinity::set_for_current(id) {
        Ok(())
    } else {
        Err(SysError::PinRefused { core })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_to_an_existing_core_and_rejects_a_missing_one() {
        let first = core_affinity::get_core_ids().unwrap()[0].id;
        std::thread::spawn(move || pin_current_thread(first).unwrap())
            .join()
            .unwrap();
        let err = pin_current_thread(100_000).unwrap_err();
        assert!(
            matches!(err, SysError::NoSuchCore { core: 100_000, .. }),
            "{err}"
        );
    }
}
