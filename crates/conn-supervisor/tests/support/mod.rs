//! Real parts for the cluster tests: an etcd process, a TCP proxy that can cut one
//! node off from it, supervisor processes and a little HTTP. Every process is killed
//! and every scratch directory removed when its guard drops.

#![allow(dead_code, unreachable_pub)]

pub mod etcd;
pub mod http;
pub mod node;
pub mod proxy;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// A fresh scratch directory path (not created), on tmpfs where there is one: etcd
/// fsyncs every write.
pub fn scratch_dir(what: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!(
        "conn-supervisor-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}
