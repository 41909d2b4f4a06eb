//! The playground's answers computed natively: each argument is a JSON request, as the page
//! sends them (a path, or `"catalog"`), and each answer is printed on a line of its own.
//!
//! `cargo run -p ndoptim-playground --bin paths -- '{"path": {"surface": "book", "start": [-7, 2], "steps": 30, "optimizer": "Adam", "hyperparameters": [["lr", 0.3]]}}'`

fn main() {
    let requests: Vec<String> = std::env::args().skip(1).collect();
    if requests.is_empty() || requests.iter().any(|r| r == "--help" || r == "-h") {
        println!(
            "usage: paths QUERY...\n\nEach QUERY is JSON, as the playground's page sends it: \
             {{\"path\": {{\"surface\": \"book\"|\"rosenbrock\"|\"beale\"|\"saddle\", \
             \"start\": [x, y], \"steps\": n, \"optimizer\": LABEL, \
             \"hyperparameters\": [[name, value], ...]}}}}, \"catalog\" for the optimizers and \
             surfaces, or {{\"grid\": {{\"surface\": ..., \"columns\": n, \"rows\": n}}}}."
        );
        return;
    }
    for request in requests {
        println!("{}", ndoptim_playground::answer(&request));
    }
}
