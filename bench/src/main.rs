//! `loadgen`: measures an HTTP JSON endpoint on loopback.
//!
//! - `rate`: open loop at a fixed request rate; each request's latency counts from when it
//!   was due, so a stalled server shows up in the tail (no coordinated omission).
//! - `throughput`: closed loop, `--concurrency` connections sending back to back.
//! - `cold-start`: starts a server command and times process start → first 200.
//! - `rss`: peak and current resident memory of a process and its descendants.
//!
//! Every command prints one JSON object. The client is a minimal keep-alive HTTP/1.1
//! client over `TcpStream`, so its own overhead stays in the microseconds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// host:port
    #[arg(long)]
    addr: String,
    #[arg(long, default_value = "/predict")]
    path: String,
    /// The JSON body to POST
    #[arg(long)]
    body: PathBuf,
    /// A file of location ids, one a line: the requests go round them, each body with
    /// its `"location"` (an API serving `RPS_LOCATIONS`)
    #[arg(long)]
    locations: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    Rate {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        rate: f64,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 2.0)]
        warmup_seconds: f64,
    },
    Throughput {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
    ColdStart {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// The server command and its arguments (after --)
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    Rss {
        #[arg(long)]
        pid: u32,
    },
}

struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            stream: None,
        }
    }

    /// One request; reconnects once if the kept-alive connection was closed.
    fn post(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                let s = TcpStream::connect(&self.addr)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                self.stream = Some(BufReader::new(s));
            }
            match self.exchange(request) {
                Ok(status) => return Ok(status),
                Err(e) if attempt == 0 => {
                    self.stream = None;
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!()
    }

    fn exchange(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        let r = self.stream.as_mut().context("not connected")?;
        r.get_mut().write_all(request)?;
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            bail!("connection closed");
        }
        let status: u16 = line.split_whitespace().nth(1).context("no status")?.parse()?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse::<usize>().ok();
            } else if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            } else if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16)?;
                let mut buf = vec![0; size + 2];
                r.read_exact(&mut buf)?;
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            let mut buf = vec![0; n];
            r.read_exact(&mut buf)?;
        }
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

fn request_bytes(t: &Target) -> anyhow::Result<Vec<u8>> {
    Ok(requests(t)?.swap_remove(0))
}

/// The requests to send, in turn: one, or one per location of `--locations`.
fn requests(t: &Target) -> anyhow::Result<Vec<Vec<u8>>> {
    let body = std::fs::read(&t.body).with_context(|| format!("reading {}", t.body.display()))?;
    let bodies = match &t.locations {
        None => vec![body],
        Some(file) => {
            let ids = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let doc: serde_json::Value = serde_json::from_slice(&body).context("the body is not JSON")?;
            let bodies: Vec<Vec<u8>> = ids
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|id| {
                    let mut d = doc.clone();
                    d["location"] = json!(id.trim());
                    serde_json::to_vec(&d).expect("JSON serializes")
                })
                .collect();
            if bodies.is_empty() {
                bail!("{} lists no location", file.display());
            }
            bodies
        }
    };
    Ok(bodies
        .into_iter()
        .map(|body| {
            let mut req = format!(
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                t.path,
                t.addr,
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            req
        })
        .collect())
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn latency_report(mut lat_us: Vec<u64>, errors: u64, elapsed: f64) -> serde_json::Value {
    lat_us.sort_unstable();
    json!({
        "requests": lat_us.len(),
        "errors": errors,
        "seconds": elapsed,
        "throughput_rps": lat_us.len() as f64 / elapsed,
        "p50_ms": percentile(&lat_us, 0.50),
        "p90_ms": percentile(&lat_us, 0.90),
        "p99_ms": percentile(&lat_us, 0.99),
        "p999_ms": percentile(&lat_us, 0.999),
        "max_ms": lat_us.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
    })
}

fn rate(
    t: &Target,
    rate: f64,
    seconds: f64,
    connections: usize,
    warmup: f64,
) -> anyhow::Result<serde_json::Value> {
    let reqs = Arc::new(requests(t)?);
    // Warm up (connections, caches), unmeasured.
    let mut c = Conn::new(&t.addr);
    let until = Instant::now() + Duration::from_secs_f64(warmup);
    let mut w = 0;
    while Instant::now() < until {
        c.post(&reqs[w % reqs.len()])?;
        w += 1;
    }
    let total = (rate * seconds) as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let lat = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let (reqs, next, errors, lat, addr) = (
                reqs.clone(),
                next.clone(),
                errors.clone(),
                lat.clone(),
                t.addr.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = Conn::new(&addr);
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    match conn.post(&reqs[i % reqs.len()]) {
                        Ok(200) => mine.push(Instant::now().duration_since(due).as_micros() as u64),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a load thread panicked");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let lat = std::mem::take(&mut *lat.lock().unwrap());
    let mut r = latency_report(lat, errors.load(Ordering::Relaxed), elapsed);
    r["target_rps"] = json!(rate);
    r["connections"] = json!(connections);
    r["locations"] = json!(reqs.len());
    Ok(r)
}

fn throughput(t: &Target, concurrency: usize, seconds: f64) -> anyhow::Result<serde_json::Value> {
    let reqs = Arc::new(requests(t)?);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..concurrency)
        .map(|_| {
            let (reqs, errors, addr) = (reqs.clone(), errors.clone(), t.addr.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::new(&addr);
                let mut mine = Vec::new();
                let mut i = 0;
                while Instant::now() < until {
                    let s = Instant::now();
                    i += 1;
                    match conn.post(&reqs[i % reqs.len()]) {
                        Ok(200) => mine.push(s.elapsed().as_micros() as u64),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.join().expect("a load thread panicked"));
    }
    let mut r = latency_report(
        all,
        errors.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    );
    r["concurrency"] = json!(concurrency);
    Ok(r)
}

fn cold_start(t: &Target, runs: usize, command: &[String]) -> anyhow::Result<serde_json::Value> {
    let req = request_bytes(t)?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {command:?}"))?;
        let deadline = started + Duration::from_secs(120);
        let ms = loop {
            let mut c = Conn::new(&t.addr);
            if let Ok(200) = c.post(&req) {
                break started.elapsed().as_secs_f64() * 1000.0;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("{command:?} never answered 200");
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        times.push(ms);
        kill_tree(child.id());
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(json!({
        "runs_ms": times,
        "median_ms": sorted[sorted.len() / 2],
        "min_ms": sorted[0],
        "max_ms": sorted[sorted.len() - 1],
    }))
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) {
            out.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        i += 1;
    }
    out
}

fn kill_tree(pid: u32) {
    for p in descendants(pid).into_iter().rev() {
        let _ = Command::new("kill").arg(p.to_string()).status();
    }
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss(pid: u32) -> serde_json::Value {
    let procs: Vec<serde_json::Value> = descendants(pid)
        .into_iter()
        .map(|p| {
            let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().replace('\0', " ");
            json!({"pid": p, "peak_rss_mb": status_kb(p, "VmHWM:") as f64 / 1024.0, "rss_mb": status_kb(p, "VmRSS:") as f64 / 1024.0, "cmd": cmd.trim()})
        })
        .collect();
    let sum = |k: &str| procs.iter().map(|p| p[k].as_f64().unwrap_or(0.0)).sum::<f64>();
    json!({"processes": procs.len(), "peak_rss_mb_total": sum("peak_rss_mb"), "rss_mb_total": sum("rss_mb"),
           "peak_rss_mb_max_process": procs.iter().map(|p| p["peak_rss_mb"].as_f64().unwrap_or(0.0)).fold(0.0, f64::max),
           "detail": procs})
}

fn main() -> anyhow::Result<()> {
    let out = match Cli::parse().cmd {
        Cmd::Rate {
            target,
            rate: r,
            seconds,
            connections,
            warmup_seconds,
        } => rate(&target, r, seconds, connections, warmup_seconds)?,
        Cmd::Throughput {
            target,
            concurrency,
            seconds,
        } => throughput(&target, concurrency, seconds)?,
        Cmd::ColdStart {
            target,
            runs,
            command,
        } => cold_start(&target, runs, &command)?,
        Cmd::Rss { pid } => rss(pid),
    };
    println!("{out}");
    Ok(())
}
