//! `baseline-udp`: a plain UDP reflector, the floor under every other
//! measurement (issue 5). No QUIC, no crypto, no sessions: each datagram is
//! sent straight back to where it came from.
//!
//! One thread, a tokio current_thread runtime used only to sleep while the
//! socket is empty; otherwise a tight loop of quinn-udp's batched receive
//! (`recvmmsg`, up to `BATCH_SIZE` messages, with GRO coalescing) and send
//! (`sendmsg` with GSO: a GRO-coalesced run of same-size datagrams from one
//! peer goes back as one GSO send). That is the same UDP layer the gateway
//! uses, without anything above it.
//!
//! Prints `listening ADDR` on stdout. Flags: `--listen ADDR` (default
//! `127.0.0.1:0`).

use std::io::IoSliceMut;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use quinn_udp::{BATCH_SIZE, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Bytes of one receive buffer: room for a full GRO batch of 64 KiB.
const RECV_BUF_BYTES: usize = 64 * 1024;
/// Socket buffer sizes asked of the kernel: a burst of a few thousand
/// game datagrams.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

fn main() -> anyhow::Result<()> {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .context("--listen needs a value")?
                    .parse()
                    .context("--listen")?;
            }
            "-h" | "--help" => {
                println!("baseline-udp [--listen ADDR]");
                return Ok(());
            }
            other => bail!("unknown flag {other}; see --help"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(reflect(listen))
}

async fn reflect(listen: SocketAddr) -> anyhow::Result<()> {
    let std_socket = std::net::UdpSocket::bind(listen)?;
    std_socket.set_nonblocking(true)?;
    let state = UdpSocketState::new(UdpSockRef::from(&std_socket))?;
    // Best effort: the kernel caps these at its own maximum.
    let _ = state.set_recv_buffer_size(UdpSockRef::from(&std_socket), SOCKET_BUFFER_BYTES);
    let _ = state.set_send_buffer_size(UdpSockRef::from(&std_socket), SOCKET_BUFFER_BYTES);
    let socket = UdpSocket::from_std(std_socket)?;
    println!("listening {}", socket.local_addr()?);

    let mut storage = vec![[0u8; RECV_BUF_BYTES]; BATCH_SIZE];
    let mut meta = vec![RecvMeta::default(); BATCH_SIZE];
    loop {
        let received = {
            let mut bufs: Vec<IoSliceMut<'_>> =
                storage.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            loop {
                socket.readable().await?;
                match socket.try_io(Interest::READABLE, || {
                    state.recv(UdpSockRef::from(&socket), &mut bufs, &mut meta)
                }) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    // ICMP errors from a peer that went away: keep serving.
                    Err(_) => continue,
                }
            }
        };
        for (m, buf) in meta.iter().zip(&storage).take(received) {
            echo(&socket, &state, m, &buf[..m.len]).await;
        }
    }
}

/// Sends `contents` back to where `meta` says it came from. A stride below
/// the length means GRO coalesced same-size datagrams: they go back the same
/// way, as one GSO send, when the socket can send that many segments at
/// once, and one by one otherwise.
async fn echo(socket: &UdpSocket, state: &UdpSocketState, meta: &RecvMeta, contents: &[u8]) {
    let stride = meta.stride.max(1);
    let segments = contents.len().div_ceil(stride);
    let transmit = |contents, segment_size| Transmit {
        destination: meta.addr,
        ecn: None,
        contents,
        segment_size,
        src_ip: meta.dst_ip,
    };
    if segments <= 1 {
        send(socket, state, &transmit(contents, None)).await;
    } else if segments <= state.max_gso_segments() {
        send(socket, state, &transmit(contents, Some(stride))).await;
    } else {
        for datagram in contents.chunks(stride) {
            send(socket, state, &transmit(datagram, None)).await;
        }
    }
}

/// Sends one transmit, waiting while the socket buffer is full; other
/// errors (an unreachable peer) drop it, as UDP would.
async fn send(socket: &UdpSocket, state: &UdpSocketState, transmit: &Transmit<'_>) {
    loop {
        if socket.writable().await.is_err() {
            return;
        }
        match socket.try_io(Interest::WRITABLE, || {
            state.send(UdpSockRef::from(socket), transmit)
        }) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            _ => return,
        }
    }
}
