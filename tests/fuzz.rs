//! Crafted inputs may not crash the process: thousands of mutated checkpoints of every optimizer
//! (byte flips, truncations, insertions, and metadata rewrites: huge, overflowing, zero and
//! high-rank shapes, step counts, hyperparameters, format, missing fields, non-JSON fields) and of
//! IDX files. Every case must load or return an error, never panic or abort; after an error the
//! optimizer must be unchanged; and no case may allocate by a claim: the largest single
//! allocation must stay within a small multiple of the file's size.
//!
//! An abort cannot be caught, so the cases run in a child process (this test binary again, in
//! `fuzz_child`): the parent reads which case the child started last, counts an abort as that
//! case's failure and goes on from the next one.
#![cfg(feature = "safetensors")]

#[macro_use]
mod common;

#[path = "../examples/common/mnist.rs"]
#[allow(dead_code)]
mod mnist;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::state_bits;
use ndoptim::schedule::{Scheduler, TorchSchedule};
use ndoptim::{Engine, Optimizer, Params, Rule};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The largest single allocation since the last reset.
static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Watching;

// SAFETY: forwards to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Watching = Watching;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn model(step: usize) -> (Params<f32>, Params<f32>) {
    common::small_model(&[("W1", &[3, 4]), ("b1", &[4]), ("W2", &[4, 2, 2])], step)
}

/// A safetensors file's header as JSON, and its data.
fn split(file: &[u8]) -> (Value, Vec<u8>) {
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes")) as usize;
    (
        serde_json::from_slice(&file[8..8 + n]).expect("a JSON header"),
        file[8 + n..].to_vec(),
    )
}

fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let h = serde_json::to_vec(header).expect("JSON");
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// The metadata rewrites: each returns a new file from the valid one.
fn rewrites(file: &[u8]) -> Vec<Vec<u8>> {
    let (header, data) = split(file);
    let meta = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut h = header.clone();
        if let Some(m) = h.get_mut("__metadata__").and_then(Value::as_object_mut) {
            f(m);
        }
        join(&h, &data)
    };
    let keys = |f: &dyn Fn(&mut Value)| {
        meta(&|m| {
            let mut keys: Value = m
                .get("keys")
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Value::Null);
            if let Some(first) = keys.get_mut(0) {
                f(first);
            }
            m.insert("keys".into(), Value::String(keys.to_string()));
        })
    };
    let mut out = vec![
        keys(&|k| k["shape"] = json!([1_000_000_000_000u64, 3])),
        keys(&|k| k["shape"] = json!([u64::MAX, 2])),
        keys(&|k| k["shape"] = json!([usize::MAX, usize::MAX, 3])),
        keys(&|k| k["shape"] = json!([0])),
        keys(&|k| k["shape"] = json!([])),
        keys(&|k| k["shape"] = json!(vec![2; 40])),
        keys(&|k| k["shape"] = json!([-1, 3])),
        keys(&|k| k["step"] = json!(u64::MAX)),
        keys(&|k| k["step"] = json!((1u64 << 53) + 1)),
        keys(&|k| k["step"] = json!(-1)),
        keys(&|k| k["slots"] = json!(["nope"])),
        keys(&|k| k["slots"] = json!([])),
        keys(&|k| k["key"] = json!("not a key")),
        keys(&|k| k["scalars"] = json!({"x": 1})),
    ];
    let bad_scheduler =
        json!({"schedule": {"StepLR": {"step_size": 0, "gamma": 0.1}}, "base_lr": 0.1,
        "last_epoch": 0, "step_count": 1, "last_lr": 0.1, "t_cur": 0, "t_i": 0, "best": null,
        "bad_epochs": 0, "cooldown_left": 0, "children": []})
        .to_string();
    // Metadata fields replaced by strings of the wrong kind or out of range.
    for (field, value) in [
        ("keys", "not json"),
        ("keys", "[]"),
        ("format", "2"),
        ("format", "-1"),
        ("dtype", "f64"),
        ("lr", "-1"),
        ("lr", "1e400"),
        ("skipped_steps", "18446744073709551615"),
        ("scheduler", "not json"),
        ("scheduler", &bad_scheduler),
        ("hyperparameters", "{}"),
    ] {
        out.push(meta(&|m| {
            m.insert(field.into(), Value::String(value.into()));
        }));
    }
    for field in [
        "format",
        "optimizer",
        "dtype",
        "hyperparameters",
        "lr",
        "skipped_steps",
        "keys",
        "scheduler",
    ] {
        out.push(meta(&|m| {
            m.remove(field);
        }));
    }
    // Every number of the hyperparameters, in turn, made negative, huge, NaN-like and a string.
    let hyper: Value = header["__metadata__"]["hyperparameters"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let mut paths = Vec::new();
    numbers(&hyper, &mut Vec::new(), &mut paths);
    for path in paths {
        for v in [json!(-1.0), json!(1e300), json!("NaN"), json!(null)] {
            let mut h = hyper.clone();
            if let Some(slot) = path.iter().try_fold(&mut h, |h, k| h.get_mut(k.as_str())) {
                *slot = v;
            }
            out.push(meta(&|m| {
                m.insert("hyperparameters".into(), Value::String(h.to_string()));
            }));
        }
    }
    out
}

/// The paths of every number in `v`.
fn numbers(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Number(_) => out.push(at.clone()),
        Value::Object(m) => {
            for (k, x) in m {
                at.push(k.clone());
                numbers(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Byte-level mutations of `file`: flips, truncations, insertions.
fn mutations(file: &[u8], rng: &mut Rng, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            let mut f = file.to_vec();
            match rng.below(4) {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let i = rng.below(f.len());
                        f[i] ^= 1 << rng.below(8);
                    }
                }
                1 => f.truncate(rng.below(f.len())),
                2 => {
                    let i = rng.below(f.len() + 1);
                    let junk: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                    f.splice(i..i, junk);
                }
                _ => {
                    // A random byte in the header's length or in the header itself.
                    let i = rng.below(f.len().min(200));
                    f[i] = rng.next() as u8;
                }
            }
            f
        })
        .collect()
}

/// Runs one case; `Err` describes a failure (an error must leave the optimizer unchanged).
fn load_case<R>(trained: &Engine<R, f32>, file: &[u8]) -> Result<(), String>
where
    R: Rule<f32> + Serialize + DeserializeOwned,
    R::KeyScalars: Serialize + DeserializeOwned,
{
    let mut opt = trained.clone();
    let before = (state_bits(&opt), opt.learning_rate(), opt.skipped_steps());
    match opt.load_safetensors(file) {
        Ok(_) => {
            // A loaded checkpoint must also step without trouble.
            let (mut p, g) = model(9);
            let _ = opt.update(&mut p, &g);
        }
        Err(_) => {
            let after = (state_bits(&opt), opt.learning_rate(), opt.skipped_steps());
            if after != before {
                return Err("an error changed the optimizer".into());
            }
        }
    }
    Ok(())
}

/// Every case of one optimizer, from case number `start` on; `next` numbers them.
fn checkpoint_cases<R>(
    fresh: Engine<R, f32>,
    next: &mut usize,
    start: usize,
    failures: &mut Vec<String>,
) where
    R: Rule<f32> + Serialize + DeserializeOwned,
    R::KeyScalars: Serialize + DeserializeOwned,
{
    let mut trained = fresh.clone();
    let mut scheduler = Scheduler::new(TorchSchedule::ExponentialLR { gamma: 0.9 }, &mut trained)
        .expect("a schedule");
    let (mut p, _) = model(0);
    for step in 1..=3 {
        trained.update(&mut p, &model(step).1).expect("a step");
        scheduler.step(&mut trained).expect("a schedule step");
    }
    let file = trained.save_safetensors(Some(&scheduler)).expect("a file");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ *next as u64);
    let mut cases = rewrites(&file);
    cases.extend(mutations(&file, &mut rng, 150));
    let label = trained.name();
    run_cases(label, cases, next, start, failures, |case| {
        load_case(&trained, case)
    });
}

fn idx_cases(next: &mut usize, start: usize, failures: &mut Vec<String>) {
    let mut valid = 2051u32.to_be_bytes().to_vec();
    for d in [3u32, 2, 2] {
        valid.extend(d.to_be_bytes());
    }
    valid.extend([7u8; 12]);
    let mut rng = Rng(12345);
    let mut cases = mutations(&valid, &mut rng, 2000);
    for dims in [
        [u32::MAX, u32::MAX, u32::MAX],
        [0, 0, 0],
        [60000, 28, 28],
        [u32::MAX, 2, 1],
    ] {
        let mut f = 2051u32.to_be_bytes().to_vec();
        for d in dims {
            f.extend(d.to_be_bytes());
        }
        f.extend([1u8; 12]);
        cases.push(f);
    }
    let path = std::path::Path::new("fuzzed.idx");
    run_cases(
        "IDX",
        cases,
        next,
        start,
        failures,
        |case| match mnist::parse_idx(path, case, 2051) {
            Ok((dims, data)) if dims.iter().product::<usize>() != data.len() => {
                Err(format!("{dims:?} with {} bytes", data.len()))
            }
            _ => Ok(()),
        },
    );
}

/// Runs the cases numbered from `*next` on that are at `start` or later: prints each number
/// before it runs (for the parent), catches panics, and bounds the largest single allocation by
/// the case's size.
fn run_cases(
    label: &str,
    cases: Vec<Vec<u8>>,
    next: &mut usize,
    start: usize,
    failures: &mut Vec<String>,
    check: impl Fn(&[u8]) -> Result<(), String>,
) {
    for case in cases {
        let n = *next;
        *next += 1;
        if n < start {
            continue;
        }
        println!("case {n}");
        let _ = std::io::stdout().flush();
        LARGEST.store(0, Ordering::Relaxed);
        match std::panic::catch_unwind(AssertUnwindSafe(|| check(&case))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("case {n} ({label}): {e}")),
            Err(_) => failures.push(format!("case {n} ({label}): panicked")),
        }
        let largest = LARGEST.load(Ordering::Relaxed);
        if largest > 64 * case.len() + (1 << 20) {
            failures.push(format!(
                "case {n} ({label}): allocated {largest} bytes for {} bytes",
                case.len()
            ));
        }
    }
}

/// The child: runs every case from `NDOPTIM_FUZZ_FROM` on, printing each number before it runs,
/// then the failures and `done`. Without the variable (a normal test run) it does nothing.
#[test]
fn fuzz_child() {
    let Some(start) = std::env::var("NDOPTIM_FUZZ_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
    else {
        return;
    };
    std::panic::set_hook(Box::new(|_| {})); // panics are counted, not printed
    let (mut next, mut failures) = (0usize, Vec::new());
    with_each_optimizer!(f32, |o| checkpoint_cases(
        o,
        &mut next,
        start,
        &mut failures
    ));
    idx_cases(&mut next, start, &mut failures);
    for f in &failures {
        println!("failure {f}");
    }
    println!("cases {next}");
    println!("done");
}

#[test]
fn crafted_checkpoints_and_idx_files_never_crash_the_process() {
    let exe = std::env::current_exe().expect("the test binary");
    let (mut start, mut failures, mut total) = (0usize, Vec::new(), 0usize);
    loop {
        let out = std::process::Command::new(&exe)
            .args(["fuzz_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("NDOPTIM_FUZZ_FROM", start.to_string())
            .output()
            .expect("the child runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut last = None;
        for line in stdout.lines() {
            if let Some(n) = line
                .strip_prefix("case ")
                .and_then(|n| n.parse::<usize>().ok())
            {
                last = Some(n);
            } else if let Some(f) = line.strip_prefix("failure ") {
                failures.push(f.to_string());
            } else if let Some(n) = line
                .strip_prefix("cases ")
                .and_then(|n| n.parse::<usize>().ok())
            {
                total = n;
            }
        }
        if stdout.lines().any(|l| l == "done") && out.status.success() {
            break;
        }
        // The child died in case `last`: that case failed; go on after it.
        let died = last.unwrap_or(start);
        failures.push(format!("case {died}: the process died ({})", out.status));
        start = died + 1;
    }
    assert!(total > 3000, "only {total} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
