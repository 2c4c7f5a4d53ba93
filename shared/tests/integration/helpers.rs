//! Helpers shared by the integration tests: the shipped sample and ways to damage it.
#![allow(dead_code)]

use rps_core::observations::RawSeries;
use serde_json::Value;

#[allow(unused_imports)]
pub use testkit::{sample_bytes, sample_path};

pub fn sample_json() -> Value {
    serde_json::from_slice(&sample_bytes()).unwrap()
}

/// The sample's first `hours` hours, as a JSON document.
pub fn sample_head(hours: usize) -> Value {
    let mut v = sample_json();
    for (_, col) in v["hourly"].as_object_mut().unwrap() {
        col.as_array_mut().unwrap().truncate(hours);
    }
    v
}

pub fn raw(v: &Value) -> RawSeries {
    RawSeries::parse(&serde_json::to_vec(v).unwrap()).unwrap()
}

pub fn hourly<'a>(v: &'a mut Value, var: &str) -> &'a mut Vec<Value> {
    v["hourly"][var].as_array_mut().unwrap()
}

/// Sets every `step`-th value of `var` to null, starting at `offset`.
pub fn null_every(v: &mut Value, var: &str, step: usize, offset: usize) -> usize {
    let col = hourly(v, var);
    let mut n = 0;
    for i in (offset..col.len()).step_by(step) {
        col[i] = Value::Null;
        n += 1;
    }
    n
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
