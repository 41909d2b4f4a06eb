//! Turns criterion's saved estimates of `benches/step.rs` into the performance chapter's tables,
//! so that they are regenerated, never typed.
//!
//! ```sh
//! cargo bench --bench step -- --save-baseline default
//! RUSTFLAGS="-C target-cpu=native" cargo bench --bench step -- "f32-1e[456]|f64-1e[456]" --save-baseline native
//! cargo run --release --example bench_summary -- target/criterion default native
//! ```
//!
//! Arguments: the criterion folder (default `target/criterion`), the baseline to summarise
//! (default `new`, criterion's latest run) and optionally a second baseline built with
//! `-C target-cpu=native` to compare against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One benchmark: its group, its function (and parameter) and its median time in ns.
#[derive(Debug)]
struct Bench {
    group: String,
    id: String,
    median_ns: f64,
    mean_ns: f64,
    bytes: Option<f64>,
}

fn read(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Every benchmark saved under `dir` for `baseline`.
fn collect(dir: &Path, baseline: &str, out: &mut Vec<Bench>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let saved = path.join(baseline);
        if let (Some(meta), Some(est)) = (
            read(&saved.join("benchmark.json")),
            read(&saved.join("estimates.json")),
        ) {
            let id = match meta["value_str"].as_str() {
                Some(v) => format!("{}/{v}", meta["function_id"].as_str().unwrap_or("")),
                None => meta["function_id"].as_str().unwrap_or("").to_string(),
            };
            out.push(Bench {
                group: meta["group_id"].as_str().unwrap_or("").to_string(),
                id,
                median_ns: est["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
                mean_ns: est["mean"]["point_estimate"].as_f64().unwrap_or(f64::NAN),
                bytes: meta["throughput"]["Bytes"].as_f64(),
            });
        } else {
            collect(&path, baseline, out);
        }
    }
}

fn time(ns: f64) -> String {
    match ns {
        x if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        x if x >= 1e3 => format!("{:.1} µs", x / 1e3),
        x => format!("{x:.0} ns"),
    }
}

const USAGE: &str = "Summarises criterion's estimates of benches/step.rs as tables.

usage: bench_summary [CRITERION_DIR [BASELINE [NATIVE_BASELINE]]]
  CRITERION_DIR     criterion's folder (default target/criterion)
  BASELINE          the baseline to summarise (default new, criterion's latest run)
  NATIVE_BASELINE   a baseline built with -C target-cpu=native, to compare against
  -h, --help        this help";

/// The command line's positional arguments (lexopt), at most three.
fn positional() -> Result<Vec<String>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut args = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) if args.len() < 3 => args.push(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

fn main() {
    let args = match positional() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let dir = PathBuf::from(args.first().map_or("target/criterion", String::as_str));
    let baseline = args.get(1).map_or("new", String::as_str);
    let mut benches = Vec::new();
    collect(&dir, baseline, &mut benches);
    if benches.is_empty() {
        eprintln!(
            "no criterion estimates for baseline {baseline:?} under {}",
            dir.display()
        );
        std::process::exit(1);
    }
    let mut native = Vec::new();
    if let Some(b) = args.get(2) {
        collect(&dir, b, &mut native);
    }
    let by = |v: &[Bench], group: &str, id: &str| {
        v.iter()
            .find(|b| b.group == group && b.id == id)
            .map(|b| b.median_ns)
    };

    // Step tables: one per dtype, optimizers by size.
    let mut groups: BTreeMap<(String, u32), Vec<&Bench>> = BTreeMap::new();
    for b in &benches {
        if let Some((dtype, size)) = b.group.split_once("-1e")
            && let Ok(exp) = size.parse::<u32>()
        {
            groups.entry((dtype.to_string(), exp)).or_default().push(b);
        }
    }
    println!(
        "| optimizer | dtype | elements | time/step | GB/s | % of probe | × naive | native build |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((dtype, exp), list) in &groups {
        let size = if dtype == "f32" { 4.0 } else { 8.0 };
        let n = 10f64.powi(*exp as i32);
        for b in list
            .iter()
            .filter(|b| !b.id.starts_with("probe") && !b.id.starts_with("naive"))
        {
            let gbs = b.bytes.map(|x| x / b.median_ns);
            // The probe moving the same bytes per element is the bandwidth limit of the pattern.
            let rw = b
                .bytes
                .map(|x| ((x / (n * size) - 1.0) / 2.0).round() as usize);
            let probe = rw.and_then(|rw| by(&benches, &b.group, &format!("probe-rw{rw}")));
            let of_probe =
                probe.map_or("–".into(), |p| format!("{:.0}%", 100.0 * p / b.median_ns));
            let naive = by(&benches, &b.group, &format!("naive-{}", b.id))
                .map_or("–".into(), |t| format!("{:.1}×", t / b.median_ns));
            let nat = by(&native, &b.group, &b.id)
                .map_or("–".into(), |t| format!("{:.0}%", 100.0 * t / b.median_ns));
            println!(
                "| {} | {dtype} | 1e{exp} | {} | {} | {of_probe} | {naive} | {nat} |",
                b.id,
                time(b.median_ns),
                gbs.map_or("–".into(), |g| format!("{g:.1}")),
            );
        }
    }

    // Per-key overhead.
    let keys: Vec<&Bench> = benches.iter().filter(|b| b.group == "keys-f32").collect();
    if !keys.is_empty() {
        println!("\n| optimizer | 1000 keys × 1e3 | 1 key × 1e6 | overhead per key |");
        println!("|---|---|---|---|");
        for b in keys.iter().filter(|b| b.id.ends_with("/1000x1e3")) {
            let name = b.id.trim_end_matches("/1000x1e3");
            if let Some(one) = by(&benches, "keys-f32", &format!("{name}/1x1e6")) {
                println!(
                    "| {name} | {} | {} | {:.0} ns |",
                    time(b.median_ns),
                    time(one),
                    (b.median_ns - one) / 999.0
                );
            }
        }
    }

    // The per-key cost against the floor of separate arrays.
    let floors: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "keys-floor-f32" && b.id.contains("@floor/"))
        .collect();
    if !floors.is_empty() {
        println!(
            "\n| optimizer (1000 keys × 1e3) | floor: plain loop | map | above the floor, per key | `update_named`, views kept | above the floor, per key |"
        );
        println!("|---|---|---|---|---|---|");
        for f in floors {
            let name = f.id.trim_end_matches("@floor/1000x1e3");
            let way = |way: &str| {
                by(
                    &benches,
                    "keys-floor-f32",
                    &format!("{name}@{way}/1000x1e3"),
                )
            };
            let cell = |t: Option<f64>| t.map_or("–".into(), time);
            let per_key =
                |t: Option<f64>| t.map_or("–".into(), |t| format!("{:.0} ns", t / 1000.0));
            println!(
                "| {name} | {} | {} | {} | {} | {} |",
                time(f.median_ns),
                cell(way("map")),
                per_key(way("map-above-floor")),
                cell(way("named")),
                per_key(way("named-above-floor")),
            );
        }
    }

    // The second way in against the map, per key.
    let named: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "keys-named-f32")
        .collect();
    if !named.is_empty() {
        println!(
            "\n| optimizer | map: overhead per key | update_named, views rebuilt each step | views kept |"
        );
        println!("|---|---|---|---|");
        let per_key = |group: &str, id: &str| {
            let many = by(&benches, group, &format!("{id}/1000x1e3"))?;
            let one = by(&benches, group, &format!("{id}/1x1e6"))?;
            Some((many - one) / 999.0)
        };
        let cell = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.0} ns"));
        for b in named.iter().filter(|b| b.id.ends_with("@kept/1000x1e3")) {
            let name = b.id.trim_end_matches("@kept/1000x1e3");
            println!(
                "| {name} | {} | {} | {} |",
                cell(per_key("keys-f32", name)),
                cell(per_key("keys-named-f32", &format!("{name}@rebuilt"))),
                cell(per_key("keys-named-f32", &format!("{name}@kept"))),
            );
        }
    }

    // Threads: the rayon feature against the serial path.
    let threads: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "threads-f32")
        .collect();
    if !threads.is_empty() {
        println!("\n| optimizer (f32) | model | serial | rayon, 2 threads | speed-up |");
        println!("|---|---|---|---|---|");
        for b in threads.iter().filter(|b| b.id.contains("@serial/")) {
            if let Some((name, model)) = b.id.split_once("@serial/")
                && let Some(par) = by(&benches, "threads-f32", &format!("{name}@rayon/{model}"))
            {
                println!(
                    "| {name} | {model} | {} | {} | {:.2}× |",
                    time(b.median_ns),
                    time(par),
                    b.median_ns / par
                );
            }
        }
    }

    // Muon against the same products through `dot`, and against torch.optim.Muon when
    // benches/muon_torch.py has written its timings beside criterion's.
    let muon: Vec<&Bench> = benches.iter().filter(|b| b.group == "muon-f32").collect();
    if !muon.is_empty() {
        let torch = read(&dir.join("muon-torch.json"));
        let version = torch
            .as_ref()
            .and_then(|t| t["torch"].as_str().map(str::to_string));
        println!(
            "\n| Muon step (f32, 1 thread) | ndoptim | NS products via `dot` | ndoptim / dot | torch{} (NS in f32) | torch (NS in bf16, as shipped) |",
            version.map_or(String::new(), |v| format!(" {v}"))
        );
        println!("|---|---|---|---|---|---|");
        for b in muon.iter().filter(|b| b.id.starts_with("Muon/")) {
            let shape = b.id.trim_start_matches("Muon/");
            let dot = by(&benches, "muon-f32", &format!("dot/{shape}"));
            let torch_time = |field: &str| {
                let t = torch.as_ref().and_then(|t| t[field][shape].as_f64());
                t.map_or("–".into(), |t| {
                    format!("{} ({:.2}× ndoptim's)", time(t), t / b.median_ns)
                })
            };
            println!(
                "| {shape} | {} | {} | {} | {} | {} |",
                time(b.median_ns),
                dot.map_or("–".into(), time),
                dot.map_or("–".into(), |d| format!("{:.2}", b.median_ns / d)),
                torch_time("median_ns_f32"),
                torch_time("median_ns"),
            );
        }
    }

    // SOAP and Kron against their references when benches/preconditioned_torch.py has written
    // its timings.
    let preconditioned: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "preconditioned-f32")
        .collect();
    if !preconditioned.is_empty() {
        let torch = read(&dir.join("preconditioned-torch.json"));
        let version = torch
            .as_ref()
            .and_then(|t| t["torch"].as_str().map(str::to_string));
        println!(
            "\n| step (f32, 1 thread, mean of 10) | ndoptim | reference on torch{} | ndoptim / reference |",
            version.map_or(String::new(), |v| format!(" {v}"))
        );
        println!("|---|---|---|---|");
        for b in &preconditioned {
            let (name, shape) = b.id.split_once('/').unwrap_or((&b.id, ""));
            let t = torch
                .as_ref()
                .and_then(|t| t["mean_ns"][name][shape].as_f64());
            println!(
                "| {name} {shape} | {} | {} | {} |",
                time(b.mean_ns),
                t.map_or("–".into(), time),
                t.map_or("–".into(), |t| format!("{:.2}", b.mean_ns / t)),
            );
        }
    }

    // faer's matrix product against matrixmultiply's, square, one thread.
    let mut gemm: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "gemm-f32" && b.id.starts_with("faer/"))
        .collect();
    gemm.sort_by_key(|b| {
        b.id.trim_start_matches("faer/")
            .parse::<usize>()
            .unwrap_or(0)
    });
    if !gemm.is_empty() {
        println!(
            "\n| C = A·B, n × n (f32, 1 thread) | faer | GFLOP/s | matrixmultiply | GFLOP/s | faer / matrixmultiply |"
        );
        println!("|---|---|---|---|---|---|");
        for b in &gemm {
            let n = b.id.trim_start_matches("faer/");
            let flops = n.parse::<f64>().map_or(f64::NAN, |n| 2.0 * n * n * n);
            let mm = by(&benches, "gemm-f32", &format!("matrixmultiply/{n}"));
            println!(
                "| {n} | {} | {:.1} | {} | {} | {} |",
                time(b.median_ns),
                flops / b.median_ns,
                mm.map_or("–".into(), time),
                mm.map_or("–".into(), |m| format!("{:.1}", flops / m)),
                mm.map_or("–".into(), |m| format!("{:.2}", b.median_ns / m)),
            );
        }
    }

    // Low-precision parameters: PyTorch's Adam on each layout, against f32 in the same run.
    let precision: Vec<&Bench> = benches
        .iter()
        .filter(|b| b.group == "precision-adam" && b.id.starts_with("f32@serial/"))
        .collect();
    if !precision.is_empty() {
        println!(
            "\n| Adam, layout | bytes/element | elements | 1 thread | × f32 | 2 threads (rayon) | × f32 |"
        );
        println!("|---|---|---|---|---|---|---|");
        let layouts = [
            ("f32", "f32 parameters and state", 28),
            ("bf16-state-f32", "bf16 parameters, f32 state", 22),
            ("bf16-state-bf16", "bf16 parameters and state", 14),
            ("bf16-state-bf16-kahan", "bf16, Kahan", 18),
            (
                "bf16-state-bf16-stochastic",
                "bf16, stochastic rounding",
                14,
            ),
        ];
        for size in ["1e6", "1e7"] {
            let f32_at = |way: &str| by(&benches, "precision-adam", &format!("f32@{way}/{size}"));
            for (id, name, bytes) in layouts {
                let at = |way: &str| by(&benches, "precision-adam", &format!("{id}@{way}/{size}"));
                let ratio = |way: &str| match (f32_at(way), at(way)) {
                    (Some(f), Some(t)) => format!("{:.2}×", f / t),
                    _ => "–".into(),
                };
                println!(
                    "| {name} | {bytes} | {size} | {} | {} | {} | {} |",
                    at("serial").map_or("–".into(), time),
                    ratio("serial"),
                    at("threads").map_or("–".into(), time),
                    ratio("threads"),
                );
            }
            if let (Some(sw), Some(hw)) = (
                by(
                    &benches,
                    "precision-adam",
                    &format!("bf16-state-bf16@Avx512/{size}"),
                ),
                by(
                    &benches,
                    "precision-adam",
                    &format!("bf16-state-bf16@serial/{size}"),
                ),
            ) {
                println!(
                    "| bf16 parameters and state, converted in software (level Avx512) | 14 | {size} | {} | the CPU's conversion {:.2}× faster | | |",
                    time(sw),
                    sw / hw
                );
            }
        }
    }

    // Instruction-set levels.
    let levels: Vec<&Bench> = benches.iter().filter(|b| b.group == "levels-f32").collect();
    if !levels.is_empty() {
        println!("\n| optimizer (f32) | elements | Portable | Avx2 | Avx512 | Avx512Bf16 |");
        println!("|---|---|---|---|---|---|");
        let mut rows: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
        for b in levels {
            if let Some((name_level, size)) = b.id.split_once('/')
                && let Some((name, level)) = name_level.split_once('@')
            {
                rows.entry((name.to_string(), size.to_string()))
                    .or_default()
                    .insert(level.to_string(), b.median_ns);
            }
        }
        for ((name, size), l) in rows {
            let cell = |k: &str| l.get(k).map_or("–".into(), |&t| time(t));
            println!(
                "| {name} | {size} | {} | {} | {} | {} |",
                cell("Portable"),
                cell("Avx2"),
                cell("Avx512"),
                cell("Avx512Bf16")
            );
        }
    }
}
