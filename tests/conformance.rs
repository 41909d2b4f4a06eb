//! Replays every reference trajectory of `tests/data/` (or of `$NDOPTIM_CONFORMANCE_DIR`) through
//! both ways in (`update` on maps, `update_named` on views, which must agree bit for bit) and
//! prints one line per file: its name, the largest relative error, PASS or FAIL.
//!
//! Tolerances (those the references' files were published with): f64 `1e-12`, f32 `1e-5`, relative to
//! `max(1, |reference|)`, after every step; L-BFGS (`torch_lbfgs_*`): its counts of evaluations
//! and iterations exactly, its iterates and losses within `1e-10` after every call.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use ndoptim::simd::{Level, with_level};

/// Replays `t` through the map and through `update_named`: the worst error, if both agree bit for
/// bit at every step.
fn both_ways<F: ndoptim::Scalar>(t: &serde_json::Value) -> Result<f64, String> {
    let (worst, map) = common::replay_by::<F>(t, common::Way::Map)?;
    let (_, named) = common::replay_by::<F>(t, common::Way::Named)?;
    match map.iter().zip(&named).position(|(a, b)| a != b) {
        None if map.len() == named.len() => Ok(worst),
        at => Err(format!("update_named differs from update at step {at:?}")),
    }
}

/// Replays a bfloat16 file both ways in, which must agree bit for bit.
#[cfg(feature = "half")]
fn bf16_both_ways(t: &serde_json::Value) -> Result<f64, String> {
    let (worst, map) = common::bf16::replay(t, common::Way::Map)?;
    let (_, named) = common::bf16::replay(t, common::Way::Named)?;
    if map == named {
        Ok(worst)
    } else {
        Err("update_named differs from update".into())
    }
}

fn main() -> ExitCode {
    let dir = std::env::var_os("NDOPTIM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data"));
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(e) => {
            eprintln!("conformance: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    files.retain(|f| f.extension().is_some_and(|e| e == "json"));
    files.sort();
    let levels: Vec<_> = Level::available().collect();
    println!(
        "conformance vectors in {}, each run at every SIMD level: {levels:?}",
        dir.display()
    );
    let (mut passed, mut failed) = (0, 0);
    for file in &files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = match common::read_json(file) {
            Ok(t) => t,
            Err(e) => {
                println!("{name:<80} FAIL  {e}");
                failed += 1;
                continue;
            }
        };
        if t.get("expected").is_none() {
            continue; // not a trajectory (schedules, clipping, figure paths): other tests read it
        }
        // Every instruction-set level this CPU has, both ways in; the line reports the worst
        // error, and fails if the named way in differs from the map's by a single bit.
        if t["dtype"] == "bf16" && cfg!(not(feature = "half")) {
            println!(
                "{name:<80} {:>9}  SKIP  (bfloat16 needs --features half)",
                "-"
            );
            continue;
        }
        let run = |level| {
            with_level(level, || match t["dtype"].as_str() {
                Some("f64") => (both_ways::<f64>(&t), 1e-12),
                Some("f32") => (both_ways::<f32>(&t), 1e-5),
                // torch-optimi on bfloat16: exact (the references' tolerances).
                #[cfg(feature = "half")]
                Some("bf16") => (bf16_both_ways(&t), 0.0),
                other => (Err(format!("unknown dtype {other:?}")), 0.0),
            })
            .unwrap_or((Err(format!("level {level:?} unavailable")), 0.0))
        };
        // torch.optim.Muon and NorMuon as shipped run Newton-Schulz in bfloat16: a loose check
        // only, 1e-3 and 1e-2 (the references' tolerances).
        let loose = name.contains("bf16ns");
        let (result, tolerance) = Level::available()
            .map(run)
            .fold((Ok(0.0), 0.0), |(acc, _), (r, tol)| {
                (acc.and_then(|a: f64| r.map(|e| a.max(e))), tol)
            });
        // L-BFGS's 10-vector dot products follow the BLAS's summation order, which PyTorch does
        // not fix: its iterates within 1e-10, its counts exactly (the references' tolerances).
        // SAM's normalised ascent amplifies f32 rounding: f32 SAM within 1e-4 (the references' tolerance); so do
        // SOAP's f32 eigenvectors (1.2e-5 between two LAPACKs, per the references).
        let tolerance = match (loose, t["optimizer"].as_str()) {
            (true, Some("SingleDeviceNorMuon")) => 1e-2,
            (true, _) => 1e-3,
            (_, Some("LBFGS")) => 1e-10,
            (_, Some("sam" | "SOAP")) if t["dtype"] == "f32" => 1e-4,
            _ => tolerance,
        };
        match result {
            Ok(err) if err <= tolerance => {
                println!("{name:<80} {err:9.2e}  PASS");
                passed += 1;
            }
            Ok(err) => {
                println!("{name:<80} {err:9.2e}  FAIL  (tolerance {tolerance:.0e})");
                failed += 1;
            }
            Err(e) => {
                println!("{name:<80} {:>9}  FAIL  {e}", "-");
                failed += 1;
            }
        }
    }
    println!("conformance: {passed} passed, {failed} failed");
    if failed == 0 && passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
