//! Compiles the C anchors with the flags a C programmer would use for speed: `-O3
//! -march=native`, and OpenMP for the threaded loop.

fn main() {
    println!("cargo:rerun-if-changed=csrc/adam.c");
    cc::Build::new()
        .file("csrc/adam.c")
        .opt_level(3)
        .flag("-march=native")
        // sqrtf without errno: it vectorizes, as in any C built for speed.
        .flag("-fno-math-errno")
        .flag("-fopenmp")
        .compile("anchors");
    println!("cargo:rustc-link-lib=gomp");
}
