//! A client the integration tests run inside sandboxes. It speaks the echo servers' line
//! protocol: send `TOKEN\n`, receive `LOCAL_ADDR TOKEN\n` where LOCAL_ADDR is the address the
//! server was listening on, i.e. the destination the connection really reached.
//!
//! ```text
//! veil-test-client echo ADDR TOKEN     one exchange; prints "pid PID" then the reply
//! veil-test-client many N ADDR[,ADDR]  N connections at once, round-robin over the ADDRs;
//!                                      prints "ok N" or the first mismatch
//! veil-test-client h2-streams N TLSARGS 100 requests over one HTTP/2 connection (ALPN h2
//!                                      only); prints "ok N"
//! veil-test-client h2-host AUTHORITY HOST TLSARGS
//!                                      one HTTP/2 request for https://AUTHORITY/h2-host with
//!                                      a `host` header HOST (none for `-`); prints "status N"
//! veil-test-client ws TLSARGS          a WebSocket echo over TLS; prints "echo: TEXT"
//! veil-test-client split-hello TLSARGS an HTTP/1.1 GET whose ClientHello goes out in two
//!                                      TCP segments; prints the response body
//! veil-test-client slow-hello TLSARGS  the same with the ClientHello sent 800 ms after the
//!                                      connect
//! ```
//! TLSARGS are `--connect IP:PORT --sni NAME --ca FILE [--bearer-env VAR]`; with
//! `--bearer-env`, requests carry `Authorization: Bearer $VAR`.
//!
//! Exit codes: 0 success, 2 usage, 3 connect failed, 4 wrong reply.

mod https;

use std::{
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream},
    process::exit,
    sync::{Arc, Barrier},
    thread,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["echo", addr, token] => {
            println!("pid {}", std::process::id());
            match exchange(parse(addr), token) {
                Ok(reply) => println!("{reply}"),
                Err(Failure::Connect(e)) => {
                    println!("connect failed: {e}");
                    exit(3)
                }
                Err(Failure::Reply(e)) => {
                    println!("bad reply: {e}");
                    exit(4)
                }
            }
        }
        ["many", n, addrs] => many(n.parse().unwrap_or_else(|_| usage()), addrs),
        [cmd @ ("h2-streams" | "h2-host" | "ws" | "split-hello" | "slow-hello"), rest @ ..] => {
            https::main(cmd, rest)
        }
        _ => usage(),
    }
}

enum Failure {
    Connect(std::io::Error),
    Reply(String),
}

fn exchange(addr: SocketAddr, token: &str) -> Result<String, Failure> {
    let mut stream = TcpStream::connect(addr).map_err(Failure::Connect)?;
    stream
        .write_all(format!("{token}\n").as_bytes())
        .map_err(|e| Failure::Reply(e.to_string()))?;
    let mut line = String::new();
    let n = BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| Failure::Reply(e.to_string()))?;
    if n == 0 {
        return Err(Failure::Reply("connection closed without a reply".into()));
    }
    Ok(line.trim_end().to_owned())
}

fn many(n: usize, addrs: &str) {
    let addrs: Vec<SocketAddr> = addrs.split(',').map(parse).collect();
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let token = format!("t{i}");
                match exchange(addr, &token) {
                    Ok(reply) if reply == format!("{addr} {token}") => Ok(()),
                    Ok(reply) => Err((4, format!("connection {i} to {addr} got {reply:?}"))),
                    Err(Failure::Connect(e)) => Err((3, format!("connection {i} to {addr}: {e}"))),
                    Err(Failure::Reply(e)) => Err((4, format!("connection {i} to {addr}: {e}"))),
                }
            })
        })
        .collect();
    let mut first_failure = None;
    for handle in handles {
        let result = handle.join().unwrap_or(Err((4, "thread panicked".into())));
        if let (Err(failure), None) = (result, &first_failure) {
            first_failure = Some(failure);
        }
    }
    match first_failure {
        None => println!("ok {n}"),
        Some((code, message)) => {
            println!("{message}");
            exit(code)
        }
    }
}

fn parse(addr: &str) -> SocketAddr {
    addr.parse().unwrap_or_else(|_| usage())
}

/// Prints the usage and exits with 2.
pub fn usage() -> ! {
    eprintln!(
        "usage: veil-test-client echo ADDR TOKEN | many N ADDR[,ADDR...] | \
         h2-streams N TLSARGS | h2-host AUTHORITY HOST TLSARGS | ws TLSARGS | split-hello TLSARGS | slow-hello TLSARGS"
    );
    exit(2)
}
