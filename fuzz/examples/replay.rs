//! Runs one target on input files, without instrumentation, to reproduce a finding with a
//! readable panic and backtrace: `cargo run --example replay -- TARGET FILE...`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((target, files)) = args.split_first() else {
        eprintln!("usage: replay TARGET FILE...");
        std::process::exit(2);
    };
    let Some((_, run)) = keyless_fuzz::TARGETS.iter().find(|(n, _)| n == target) else {
        eprintln!("unknown target {target}");
        std::process::exit(2);
    };
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        let start = std::time::Instant::now();
        run(&data);
        println!("{file}: ok in {:?}", start.elapsed());
    }
}
