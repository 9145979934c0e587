//! The `cost-exporter` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cost_exporter::cli::main())
}
