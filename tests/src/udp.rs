//! UDP servers that stand in for DNS resolvers: each answers every datagram with
//! `LISTEN_ADDR DATAGRAM`, so a client can tell which server it reached.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

/// A UDP echo server on one address.
pub struct UdpEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    received: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl UdpEcho {
    /// Starts a server on `addr` (port 53 needs root, which the tests have).
    pub fn start(addr: &str) -> Self {
        crate::remote_hosts();
        let socket = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("binding {addr}: {e}"));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("local addr");
        let received = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (received, stop) = (Arc::clone(&received), Arc::clone(&stop));
            thread::spawn(move || {
                let mut buf = [0u8; 512];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        received.fetch_add(1, Ordering::SeqCst);
                        let reply = format!("{addr} {}", String::from_utf8_lossy(&buf[..n]));
                        let _ = socket.send_to(reply.as_bytes(), from);
                    }
                }
            })
        };
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    /// How many datagrams it received.
    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
