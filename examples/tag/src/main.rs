//! `tag-server`: the whole `lanegate` command line (`serve`, `ticket`,
//! `config`, `doctor`, `probe`, `bots`) with Tag behind `serve`.
#![forbid(unsafe_code)]

use lanegate_example_tag::{Tag, TagConfig};

fn main() -> std::process::ExitCode {
    lanegate_gateway::cli::run(|config: &TagConfig, start| Tag::new(config, start))
}
