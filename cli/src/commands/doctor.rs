//! `rps doctor`: probes the configured store, DVC remote and MLflow, prints what works
//! and what is missing, and exits 1 on a blocker. Never prints a credential.

use comfy_table::{Table, presets};
use rps_core::doctor::{self, Status};

use super::{Out, fleet, resolved_config};

pub async fn run(out: &Out) -> anyhow::Result<()> {
    let cfg = fleet::one(resolved_config().await?).await?;
    let checks = doctor::run(&cfg).await;
    let blocked = doctor::blocked(&checks);
    out.emit(&serde_json::json!({"checks": checks, "blocked": blocked}), |_| {
        let mut table = Table::new();
        table.load_preset(presets::UTF8_BORDERS_ONLY);
        table.set_header(["system", "check", "", "detail"]);
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Blocker => "BLOCKER",
            };
            table.add_row([c.system, c.check, mark, c.detail.as_str()]);
        }
        println!("{table}");
        if blocked {
            println!("rps will fail on the blocker(s) above: fix them first (docs/deploy.md).");
        }
    })?;
    if blocked {
        anyhow::bail!("rps doctor found blocker(s)");
    }
    Ok(())
}
