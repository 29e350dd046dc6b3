//! The IO layer over loopback: each backend, forced, receives and sends real
//! datagrams (sizes, source and destination addresses, GSO, ECN); sockets
//! share a port in one `SO_REUSEPORT` group; `"auto"` picks io_uring here;
//! the io_uring backend survives its buffer ring running dry.

// Helpers here are test code too: a failed step should panic the test, and
// payload bytes wrap on purpose.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lanegate_common::config::{GatewayConfig, IoBackend};
use lanegate_udp::uring::UringIo;
use lanegate_udp::{
    self as sys, BackendKind, Ecn, IoLimits, RecvBatch, SocketOptions, Transmit, UdpIo,
};

const LOOPBACK: &str = "127.0.0.1:0";

fn options() -> SocketOptions {
    SocketOptions {
        recv_buffer_bytes: 1 << 20,
        send_buffer_bytes: 1 << 20,
    }
}

fn open(backend: IoBackend) -> (Box<dyn UdpIo>, BackendKind) {
    let config = GatewayConfig {
        io_backend: backend,
        ..GatewayConfig::default()
    };
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &options()).unwrap();
    sys::open(&config, 0, socket, &IoLimits::default()).unwrap()
}

fn forced(backend: IoBackend) -> Box<dyn UdpIo> {
    let (io, kind) = open(backend);
    let want = match backend {
        IoBackend::Portable => BackendKind::Portable,
        _ => BackendKind::IoUring,
    };
    assert_eq!(kind, want);
    assert_eq!(io.kind(), want);
    io
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind(LOOPBACK).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// A recognisable payload: index in the first two bytes, then a pattern.
fn payload(i: usize, len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
    v[..2].copy_from_slice(&(i as u16).to_be_bytes());
    v
}

struct Got {
    remote: SocketAddr,
    local_ip: Option<IpAddr>,
    ecn: Option<Ecn>,
    data: Vec<u8>,
}

/// Receives until `n` datagrams (GRO trains split) arrive or 5 s pass.
fn recv_n(io: &mut dyn UdpIo, batch: &mut RecvBatch, n: usize) -> Vec<Got> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < n && Instant::now() < deadline {
        io.recv_batch(batch, Some(Duration::from_millis(100)))
            .unwrap();
        for d in batch.iter() {
            for seg in d.segments() {
                got.push(Got {
                    remote: d.remote,
                    local_ip: d.local_ip,
                    ecn: d.ecn,
                    data: seg.to_vec(),
                });
            }
        }
    }
    got
}

fn receives_datagrams_of_many_sizes(backend: IoBackend) {
    let mut io = forced(backend);
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    let to = io.local_addr();
    let peer = peer();
    let sizes: Vec<usize> = (0..48)
        .map(|i| [2, 17, 100, 512, 1199, 1200, 1350, 1472, 4000, 9000][i % 10] + i)
        .collect();
    // In rounds of 8, so the receive buffer never overflows.
    let mut got = Vec::new();
    for round in sizes.chunks(8).enumerate() {
        let (r, chunk) = round;
        for (j, &len) in chunk.iter().enumerate() {
            peer.send_to(&payload(r * 8 + j, len), to).unwrap();
        }
        got.extend(recv_n(io.as_mut(), &mut batch, chunk.len()));
    }
    assert_eq!(got.len(), sizes.len());
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.remote, peer.local_addr().unwrap(), "datagram {i}");
        assert_eq!(g.data, payload(i, sizes[i]), "datagram {i}");
        assert_eq!(
            g.local_ip,
            Some("127.0.0.1".parse().unwrap()),
            "datagram {i}"
        );
    }
}

#[test]
fn uring_receives_datagrams_of_many_sizes() {
    receives_datagrams_of_many_sizes(IoBackend::IoUring);
}

#[test]
fn portable_receives_datagrams_of_many_sizes() {
    receives_datagrams_of_many_sizes(IoBackend::Portable);
}

fn sends_batches_and_gso(backend: IoBackend) {
    let mut io = forced(backend);
    let peer = peer();
    let dst = peer.local_addr().unwrap();
    // Plain datagrams, one batch.
    let bufs: Vec<Vec<u8>> = (0..16).map(|i| payload(i, 50 + i * 70)).collect();
    let txs: Vec<Transmit<'_>> = bufs
        .iter()
        .map(|b| Transmit {
            destination: dst,
            ecn: None,
            contents: b,
            segment_size: None,
            src_ip: None,
        })
        .collect();
    assert_eq!(io.send_batch(&txs).unwrap(), txs.len());
    io.flush().unwrap();
    let mut buf = [0u8; 65536];
    for (i, b) in bufs.iter().enumerate() {
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(from, io.local_addr());
        assert_eq!(&buf[..n], &b[..], "datagram {i}");
    }
    // One GSO transmit: 5 segments of 1000 bytes and a shorter last one.
    assert!(io.max_gso_segments() > 1, "this kernel has GSO");
    let segs: Vec<Vec<u8>> = (0..6)
        .map(|i| payload(100 + i, if i == 5 { 321 } else { 1000 }))
        .collect();
    let contents = segs.concat();
    let gso = Transmit {
        destination: dst,
        ecn: None,
        contents: &contents,
        segment_size: Some(1000),
        src_ip: None,
    };
    assert_eq!(io.send_batch(&[gso]).unwrap(), 1);
    io.flush().unwrap();
    for (i, seg) in segs.iter().enumerate() {
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &seg[..], "segment {i}");
    }
}

#[test]
fn uring_sends_batches_and_gso() {
    sends_batches_and_gso(IoBackend::IoUring);
}

#[test]
fn portable_sends_batches_and_gso() {
    sends_batches_and_gso(IoBackend::Portable);
}

/// Each backend marks ECN and sets the source address; the other reads both.
#[test]
fn ecn_and_source_address_cross_backends() {
    let mut uring = forced(IoBackend::IoUring);
    let mut portable = forced(IoBackend::Portable);
    ecn_round(uring.as_mut(), portable.as_mut(), Ecn::Ect0);
    ecn_round(portable.as_mut(), uring.as_mut(), Ecn::Ce);
    ecn_round(uring.as_mut(), portable.as_mut(), Ecn::Ect1);
}

fn ecn_round(tx_io: &mut dyn UdpIo, rx_io: &mut dyn UdpIo, ecn: Ecn) {
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    let data = payload(7, 300);
    let tx = Transmit {
        destination: rx_io.local_addr(),
        ecn: Some(ecn),
        contents: &data,
        segment_size: None,
        src_ip: Some("127.0.0.1".parse().unwrap()),
    };
    assert_eq!(tx_io.send_batch(&[tx]).unwrap(), 1);
    tx_io.flush().unwrap();
    let got = recv_n(rx_io, &mut batch, 1);
    let what = format!("{:?} -> {:?}", tx_io.kind(), rx_io.kind());
    assert_eq!(got.len(), 1, "{what}");
    assert_eq!(got[0].remote, tx_io.local_addr(), "{what}");
    assert_eq!(got[0].ecn, Some(ecn), "{what}");
    assert_eq!(got[0].data, data, "{what}");
}

/// io_uring stamps each datagram with the kernel's receive time (between
/// the send and the receive, on the realtime clock); the portable backend
/// does not, and neither does io_uring when asked not to.
#[test]
fn uring_datagrams_carry_the_kernel_receive_time() {
    let since_epoch = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let received = |io: &mut dyn UdpIo| {
        let mut batch = RecvBatch::for_limits(&IoLimits::default());
        let peer = peer();
        let before = since_epoch();
        peer.send_to(b"stamp me", io.local_addr()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while batch.is_empty() && Instant::now() < deadline {
            io.recv_batch(&mut batch, Some(Duration::from_millis(100)))
                .unwrap();
        }
        let after = since_epoch();
        let d = batch.get(0).expect("the datagram");
        (before, d.received, after)
    };
    let (before, at, after) = received(forced(IoBackend::IoUring).as_mut());
    let at = at.expect("a receive timestamp");
    assert!(
        before <= at && at <= after,
        "{before:?} <= {at:?} <= {after:?}"
    );
    assert_eq!(received(forced(IoBackend::Portable).as_mut()).1, None);
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &options()).unwrap();
    let limits = IoLimits {
        receive_timestamps: false,
        ..IoLimits::default()
    };
    let mut off = UringIo::new(socket, &limits).map_err(|e| e.reason).unwrap();
    assert_eq!(received(&mut off).1, None);
}

#[test]
fn recv_times_out_empty() {
    for backend in [IoBackend::IoUring, IoBackend::Portable] {
        let mut io = forced(backend);
        let mut batch = RecvBatch::for_limits(&IoLimits::default());
        let start = Instant::now();
        let n = io
            .recv_batch(&mut batch, Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(n, 0);
        assert!(batch.is_empty());
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "{backend:?} waited"
        );
        assert_eq!(io.recv_batch(&mut batch, Some(Duration::ZERO)).unwrap(), 0);
    }
}

/// A wait for datagrams also ends when the watched wake fd is written,
/// before or during the wait, and the signal is consumed; datagrams still
/// arrive after.
#[test]
fn a_wake_fd_ends_the_wait_on_both_backends() {
    use std::sync::Arc;

    use lanegate_common::wake::Wake as _;
    use lanegate_udp::{FdWaker, WakeFd};

    const LONG: Duration = Duration::from_secs(20);
    for backend in [IoBackend::IoUring, IoBackend::Portable] {
        let mut io = forced(backend);
        let wake = WakeFd::new().unwrap();
        io.watch(Arc::clone(&wake)).unwrap();
        let mut batch = RecvBatch::for_limits(&IoLimits::default());
        // Signalled before the wait.
        wake.signal();
        let start = Instant::now();
        assert_eq!(io.recv_batch(&mut batch, Some(LONG)).unwrap(), 0);
        assert!(start.elapsed() < LONG / 2, "{backend:?}: the wait ended");
        // Consumed: the next short wait times out.
        assert_eq!(
            io.recv_batch(&mut batch, Some(Duration::from_millis(20)))
                .unwrap(),
            0
        );
        // Signalled during the wait, from another thread.
        let waker = FdWaker(Arc::clone(&wake));
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        let start = Instant::now();
        assert_eq!(io.recv_batch(&mut batch, Some(LONG)).unwrap(), 0);
        assert!(start.elapsed() < LONG / 2, "{backend:?}: woken mid-wait");
        signaller.join().unwrap();
        // The socket still works.
        let p = peer();
        p.send_to(b"after", io.local_addr()).unwrap();
        let got = recv_n(io.as_mut(), &mut batch, 1);
        assert_eq!(got[0].data, b"after", "{backend:?}");
    }
}

#[test]
fn reuseport_group_shares_one_port() {
    let group = sys::bind_group(LOOPBACK.parse().unwrap(), 2, &options()).unwrap();
    assert_eq!(group.len(), 2);
    assert_ne!(group[0].local_addr.port(), 0);
    assert_eq!(group[0].local_addr, group[1].local_addr);
    for s in &group {
        assert!(s.recv_buffer.granted_bytes > 0);
        assert!(
            !s.recv_buffer.is_clamped(),
            "1 MiB fits the default rmem_max"
        );
        assert!(s.gro, "this kernel has UDP_GRO");
        assert!(s.max_gso_segments > 1, "this kernel has UDP_SEGMENT");
    }
    // Both open as backends, on the same port.
    let config = GatewayConfig::default();
    let mut ios = Vec::new();
    for (core, s) in group.into_iter().enumerate() {
        ios.push(sys::open(&config, core, s, &IoLimits::default()).unwrap().0);
    }
    assert_eq!(ios[0].local_addr(), ios[1].local_addr());
}

#[test]
fn ipv6_loopback_reports_destination() {
    for backend in [IoBackend::IoUring, IoBackend::Portable] {
        let Ok(socket) = sys::bind_udp("[::1]:0".parse().unwrap(), &options()) else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let config = GatewayConfig {
            io_backend: backend,
            ..GatewayConfig::default()
        };
        let (mut io, _) = sys::open(&config, 0, socket, &IoLimits::default()).unwrap();
        let peer = UdpSocket::bind("[::1]:0").unwrap();
        peer.send_to(b"hello v6", io.local_addr()).unwrap();
        let mut batch = RecvBatch::for_limits(&IoLimits::default());
        let got = recv_n(io.as_mut(), &mut batch, 1);
        assert_eq!(got.len(), 1, "{backend:?}");
        assert_eq!(got[0].remote, peer.local_addr().unwrap());
        assert_eq!(got[0].local_ip, Some("::1".parse().unwrap()), "{backend:?}");
        assert_eq!(got[0].data, b"hello v6");
    }
}

#[test]
fn auto_picks_io_uring_here_and_portable_when_forced() {
    assert_eq!(open(IoBackend::Auto).1, BackendKind::IoUring);
    assert_eq!(open(IoBackend::IoUring).1, BackendKind::IoUring);
    assert_eq!(open(IoBackend::Portable).1, BackendKind::Portable);
}

#[test]
fn bad_limits_name_the_field() {
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &options()).unwrap();
    let limits = IoLimits {
        uring_recv_buffers_max: 48,
        ..IoLimits::default()
    };
    let Err(err) = sys::open(&GatewayConfig::default(), 0, socket, &limits) else {
        panic!("open accepted uring_recv_buffers_max = 48");
    };
    assert!(err.to_string().contains("uring_recv_buffers_max"), "{err}");
}

/// More datagrams queued than the ring has buffers: the multishot receive
/// ends with ENOBUFS, is re-armed, and every datagram still arrives.
#[test]
fn uring_survives_buffer_ring_exhaustion() {
    let limits = IoLimits {
        uring_recv_buffers_max: 4,
        ..IoLimits::default()
    };
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &options()).unwrap();
    let mut io = UringIo::new(socket, &limits).map_err(|e| e.reason).unwrap();
    // A small batch, so completions also wait in the backlog.
    let mut batch = RecvBatch::new(3, 3 * limits.datagram_bytes_max);
    let peer = peer();
    let n = 40;
    for i in 0..n {
        peer.send_to(&payload(i, 200 + i), io.local_addr()).unwrap();
    }
    // Let them all land in the socket before the first receive.
    std::thread::sleep(Duration::from_millis(50));
    let got = recv_n(&mut io, &mut batch, n);
    assert_eq!(got.len(), n);
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g.data, payload(i, 200 + i), "datagram {i} in order");
    }
    let stats = io.stats();
    assert!(stats.recv_no_buffers > 0, "the ring ran dry: {stats:?}");
    assert!(stats.recv_rearms > 0, "and was re-armed: {stats:?}");
    assert_eq!(stats.recv_errors + stats.recv_truncated, 0, "{stats:?}");
    // Still healthy afterwards.
    peer.send_to(b"after", io.local_addr()).unwrap();
    let got = recv_n(&mut io, &mut batch, 1);
    assert_eq!(got[0].data, b"after");
}

/// A GSO train sent by one backend arrives, possibly GRO-coalesced, at the
/// other as the same datagrams.
#[test]
fn gso_train_crosses_backends_intact() {
    let mut uring = forced(IoBackend::IoUring);
    let mut portable = forced(IoBackend::Portable);
    gso_round(uring.as_mut(), portable.as_mut());
    gso_round(portable.as_mut(), uring.as_mut());
    gso_round(uring.as_mut(), forced(IoBackend::IoUring).as_mut());
}

fn gso_round(tx_io: &mut dyn UdpIo, rx_io: &mut dyn UdpIo) {
    let segs: Vec<Vec<u8>> = (0..10)
        .map(|i| payload(i, if i == 9 { 77 } else { 1200 }))
        .collect();
    let contents = segs.concat();
    let tx = Transmit {
        destination: rx_io.local_addr(),
        ecn: None,
        contents: &contents,
        segment_size: Some(1200),
        src_ip: None,
    };
    assert_eq!(tx_io.send_batch(&[tx]).unwrap(), 1);
    tx_io.flush().unwrap();
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    let got = recv_n(rx_io, &mut batch, segs.len());
    let what = format!("{:?} -> {:?}", tx_io.kind(), rx_io.kind());
    assert_eq!(got.len(), segs.len(), "{what}");
    for (g, seg) in got.iter().zip(&segs) {
        assert_eq!(&g.data, seg, "{what}");
        assert_eq!(g.remote, tx_io.local_addr(), "{what}");
    }
}

/// io_uring queues sends; the next receive submits them (no flush).
#[test]
fn uring_sends_go_out_with_the_next_receive() {
    let mut io = forced(IoBackend::IoUring);
    let peer = peer();
    let data = payload(1, 64);
    let tx = Transmit {
        destination: peer.local_addr().unwrap(),
        ecn: None,
        contents: &data,
        segment_size: None,
        src_ip: None,
    };
    assert_eq!(io.send_batch(&[tx]).unwrap(), 1);
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    assert_eq!(io.recv_batch(&mut batch, Some(Duration::ZERO)).unwrap(), 0);
    let mut buf = [0u8; 256];
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &data[..]);
}

/// More transmits in one batch than the backend has send slots: all are
/// taken (slots are reclaimed mid-batch) or the rest is reported, and every
/// taken one arrives.
#[test]
fn send_batch_larger_than_the_send_slots() {
    for backend in [IoBackend::IoUring, IoBackend::Portable] {
        let mut io = forced(backend);
        let peer = peer();
        let n = IoLimits::default().send_slots_max * 3;
        let bufs: Vec<Vec<u8>> = (0..n).map(|i| payload(i, 100)).collect();
        let txs: Vec<Transmit<'_>> = bufs
            .iter()
            .map(|b| Transmit {
                destination: peer.local_addr().unwrap(),
                ecn: None,
                contents: b,
                segment_size: None,
                src_ip: None,
            })
            .collect();
        let mut sent = 0;
        let deadline = Instant::now() + Duration::from_secs(5);
        while sent < n && Instant::now() < deadline {
            sent += io.send_batch(&txs[sent..]).unwrap();
            io.flush().unwrap();
        }
        assert_eq!(sent, n, "{backend:?}");
        let mut buf = [0u8; 256];
        for (i, b) in bufs.iter().enumerate() {
            let (len, _) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &b[..], "{backend:?} datagram {i}");
        }
    }
}

/// Empty datagrams and, on io_uring, datagrams larger than a receive
/// buffer are dropped without disturbing the ones around them.
#[test]
fn odd_datagrams_do_not_disturb_the_stream() {
    let limits = IoLimits {
        datagram_bytes_max: 1500,
        ..IoLimits::default()
    };
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &options()).unwrap();
    let mut io = UringIo::new(socket, &limits).map_err(|e| e.reason).unwrap();
    let peer = peer();
    peer.send_to(&[], io.local_addr()).unwrap();
    peer.send_to(&payload(1, 4000), io.local_addr()).unwrap();
    peer.send_to(&payload(2, 1400), io.local_addr()).unwrap();
    let mut batch = RecvBatch::for_limits(&limits);
    let got = recv_n(&mut io, &mut batch, 1);
    assert_eq!(got.len(), 1, "{:?}", io.stats());
    assert_eq!(got[0].data, payload(2, 1400));
    assert_eq!(io.stats().recv_truncated, 1);

    let mut portable = forced(IoBackend::Portable);
    let err = portable.recv_batch(&mut batch, None).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    peer.send_to(&[], portable.local_addr()).unwrap();
    peer.send_to(&payload(3, 300), portable.local_addr())
        .unwrap();
    let got = recv_n(portable.as_mut(), &mut batch, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, payload(3, 300));
}

/// The kernel's cap shows up as a clamped grant, not an error.
#[test]
fn clamped_buffer_is_reported() {
    let Ok(max) = std::fs::read_to_string("/proc/sys/net/core/rmem_max") else {
        eprintln!("no /proc/sys/net/core/rmem_max; skipped");
        return;
    };
    let max: usize = max.trim().parse().unwrap();
    let opts = SocketOptions {
        recv_buffer_bytes: max * 4,
        send_buffer_bytes: 1 << 20,
    };
    let s = sys::bind_udp(LOOPBACK.parse().unwrap(), &opts).unwrap();
    assert!(s.recv_buffer.is_clamped(), "{:?}", s.recv_buffer);
    assert_eq!(s.recv_buffer.granted_bytes, max);
    s.warn_if_clamped(0);
}

/// io_uring reads the kernel's drop count from each receive
/// (`SO_RXQ_OVFL`): datagrams sent while nobody reads overflow the socket,
/// and the next datagram received carries the count.
#[test]
fn uring_counts_the_kernels_receive_drops() {
    let small = SocketOptions {
        recv_buffer_bytes: 64 * 1024,
        send_buffer_bytes: 1 << 20,
    };
    let config = GatewayConfig {
        io_backend: IoBackend::IoUring,
        ..GatewayConfig::default()
    };
    let socket = sys::bind_udp(LOOPBACK.parse().unwrap(), &small).unwrap();
    let (mut io, kind) = sys::open(&config, 0, socket, &IoLimits::default()).unwrap();
    assert_eq!(kind, BackendKind::IoUring);
    assert_eq!(io.kernel_drops(), Some(0), "asked for, none yet");
    let to = io.local_addr();
    let peer = peer();
    // Far more than the socket and the buffer ring hold, with nobody
    // receiving.
    for i in 0..20_000 {
        peer.send_to(&payload(i, 1000), to).unwrap();
    }
    let mut batch = RecvBatch::for_limits(&IoLimits::default());
    // Drain what was kept, then one more: it carries the count.
    while io
        .recv_batch(&mut batch, Some(Duration::from_millis(50)))
        .unwrap()
        > 0
    {}
    peer.send_to(&payload(1, 100), to).unwrap();
    let got = recv_n(io.as_mut(), &mut batch, 1);
    assert_eq!(got.len(), 1);
    let drops = io.kernel_drops().unwrap();
    assert!(
        drops > 0,
        "the kernel dropped some of 20000 unread datagrams"
    );
    assert!(drops < 20_000);
}
