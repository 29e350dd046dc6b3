//! The `lanegate` binary: the command line of `lanegate_gateway::cli` with
//! the built-in games behind `serve`. A studio's binary is the same with
//! its own game: `lanegate_gateway::cli::run(make_game)`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    lanegate_gateway::cli::run_builtin()
}
