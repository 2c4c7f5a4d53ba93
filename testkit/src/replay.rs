//! The Open-Meteo replay (`rps_core::source::replay`) in-process, on a free port, served
//! from its own thread so sync and async tests can both use it.

use std::net::SocketAddr;
use std::path::Path;

use rps_core::source::{Recording, replay};

/// A running replay; it stops with the test process.
pub struct Replay {
    pub addr: SocketAddr,
}

impl Replay {
    /// Serves the shipped sample year.
    pub fn sample() -> Self {
        Self::file(&crate::sample_path())
    }

    /// Serves a recording in Open-Meteo's shape.
    pub fn file(path: &Path) -> Self {
        Self::recording(Self::read(path))
    }

    /// Serves several recordings, each request from the one nearest its coordinates.
    pub fn files(paths: &[&Path]) -> Self {
        Self::recordings(paths.iter().map(|p| Self::read(p)).collect())
    }

    /// Serves a recording whose forecast endpoint replays, now, the recorded hour
    /// `as_of` (`Recording::as_of`): a test that scores live forecasts sees the same
    /// weather whatever day it runs on.
    pub fn file_as_of(path: &Path, as_of: &str) -> Self {
        let as_of = rps_core::observations::parse_time(as_of).expect("as_of is YYYY-MM-DDTHH:MM");
        let recording = Self::read(path)
            .as_of(as_of, rps_core::observations::utc_now())
            .expect("as_of is in the recording");
        Self::recording(recording)
    }

    fn read(path: &Path) -> Recording {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        Recording::parse(&body).expect("a usable recording")
    }

    fn recording(recording: Recording) -> Self {
        Self::recordings(vec![recording])
    }

    fn recordings(recordings: Vec<Recording>) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let (addr, handle) = replay::serve(recordings, "127.0.0.1:0".parse().expect("an address"))
                    .await
                    .expect("the replay listens");
                tx.send(addr).expect("the test waits");
                let _ = handle.await;
            });
        });
        Self {
            addr: rx.recv().expect("the replay started"),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn archive_url(&self) -> String {
        format!("http://{}/v1/archive", self.addr)
    }

    pub fn forecast_url(&self) -> String {
        format!("http://{}/v1/forecast", self.addr)
    }
}
