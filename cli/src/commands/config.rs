use rps_core::config::vars;

use super::config;

#[derive(clap::Args)]
pub struct Args {
    /// Print the table of every variable (docs/configuration.md) instead
    #[arg(long)]
    markdown: bool,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    if a.markdown {
        print!("{}", vars::markdown_table());
    } else {
        println!("{}", serde_json::to_string_pretty(&config()?)?);
    }
    Ok(())
}
