//! The playground's answers computed natively: each argument is a JSON query, as the page
//! sends them, and each answer is printed on a line of its own.
//!
//! `cargo run -p ndoptim-playground --bin paths -- '{"path": {"surface": "book", "start": [-7, 2], "steps": 30, "optimizer": "Adam", "hyperparameters": [["lr", 0.3]]}}'`

const USAGE: &str = r#"usage: paths QUERY...

Answers each QUERY, JSON as the playground's page sends it, on a line of its own:
  {"path": {"surface": "book"|"rosenbrock"|"beale"|"saddle", "start": [x, y], "steps": n,
            "optimizer": LABEL, "hyperparameters": [[name, value], ...]}}
  "catalog"    the optimizers, their hyperparameters and the surfaces
  {"grid": {"surface": ..., "columns": n, "rows": n}}
  -h, --help   this help"#;

/// The queries on the command line (lexopt), at least one.
fn queries() -> Result<Vec<String>, lexopt::Error> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_env();
    let mut queries = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) => queries.push(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    if queries.is_empty() {
        return Err("no query given".into());
    }
    Ok(queries)
}

fn main() {
    match queries() {
        Ok(queries) => queries
            .iter()
            .for_each(|q| println!("{}", ndoptim_playground::answer(q))),
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    }
}
