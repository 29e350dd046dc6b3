//! `gateway.io_backend` when io_uring is denied: a thread-scoped seccomp
//! filter makes `io_uring_setup` fail with EPERM, as a container runtime's
//! default profile does. `"auto"` falls back to the portable backend with
//! one warning naming the reason; `"io_uring"` fails with a clear error.
//!
//! Its own test binary (process): the once-per-process warning is global.

// Test code: a failed step should panic the test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lanegate_common::config::{GatewayConfig, IoBackend};
use lanegate_udp::{self as sys, BackendKind, IoLimits, RecvBatch, SocketOptions, SysError};

/// Makes `io_uring_setup` fail with EPERM on the calling thread only
/// (seccomp filters and `no_new_privs` are per thread without TSYNC).
fn deny_io_uring_on_this_thread() {
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JEQ_K: u16 = 0x15;
    const BPF_RET_K: u16 = 0x06;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const SECCOMP_MODE_FILTER: libc::c_ulong = 2;
    let nr = u32::try_from(libc::SYS_io_uring_setup).unwrap();
    let eperm = u32::try_from(libc::EPERM).unwrap();
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        libc::sock_filter {
            code: BPF_JMP_JEQ_K,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | eperm,
        },
        libc::sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).unwrap(),
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive the call (the
    // kernel copies the program).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &raw const prog),
            0,
            "seccomp: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bind() -> sys::BoundSocket {
    let opts = SocketOptions {
        recv_buffer_bytes: 1 << 20,
        send_buffer_bytes: 1 << 20,
    };
    sys::bind_udp("127.0.0.1:0".parse().unwrap(), &opts).unwrap()
}

#[test]
fn denied_io_uring_falls_back_once_or_fails_when_forced() {
    let logs = Captured::default();
    let writer = logs.clone();
    std::thread::spawn(move || {
        deny_io_uring_on_this_thread();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let limits = IoLimits::default();
            // Forced: a clear error naming the cause.
            let forced = GatewayConfig {
                io_backend: IoBackend::IoUring,
                ..GatewayConfig::default()
            };
            let Err(err) = sys::open(&forced, 0, bind(), &limits) else {
                panic!("io_uring opened despite the seccomp filter");
            };
            assert!(matches!(err, SysError::IoUringUnavailable { .. }), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains("io_uring_setup") && msg.contains("seccomp"),
                "{msg}"
            );

            // Auto, on two cores: portable, and it works.
            let auto = GatewayConfig::default();
            for core in 0..2 {
                let socket = bind();
                let (mut io, kind) = sys::open(&auto, core, socket, &limits).unwrap();
                assert_eq!(kind, BackendKind::Portable);
                let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                peer.send_to(b"still served", io.local_addr()).unwrap();
                let mut batch = RecvBatch::for_limits(&limits);
                let n = io
                    .recv_batch(&mut batch, Some(Duration::from_secs(5)))
                    .unwrap();
                assert_eq!(n, 1);
                assert_eq!(batch.get(0).unwrap().data, b"still served");
            }
        });
    })
    .join()
    .unwrap();
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning for two cores:\n{logs}");
    eprintln!("{}", warnings[0]);
    assert!(
        warnings[0].contains("portable")
            && warnings[0].contains("io_uring_setup")
            && warnings[0].contains("Operation not permitted"),
        "{}",
        warnings[0]
    );
}
