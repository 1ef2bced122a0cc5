//! `edge-items reconcile`: makes a mirror's secondary equal to its primary.
//! First the outbox is drained (so writes the secondary took during an
//! outage go back to the primary before anything is compared), then both
//! stores are compared item by item and every difference is repaired from
//! the primary, then they are compared again.

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use host::metrics::Metrics;
use host::stores::MirrorArgs;
use item_store::ItemStore;
use store_mirror::{MirrorStore, StoreOutbox, WritePolicy};

use crate::migrate_command::print_comparison;

#[derive(Debug, Args)]
pub(crate) struct ReconcileArgs {
    /// The mirror, named as `serve --store mirror` names it.
    #[command(flatten)]
    mirror: MirrorArgs,

    /// Segments read in parallel on each side.
    #[arg(long, value_name = "N", default_value_t = 4)]
    segments: u32,

    /// Only compare and list the differences; write nothing (exit 1 if
    /// there are any).
    #[arg(long)]
    dry_run: bool,
}

pub(crate) async fn reconcile(args: ReconcileArgs) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::new());
    let (primary, secondary) = args
        .mirror
        .open_sides(&metrics, None)
        .await
        .context("cannot open the mirror's stores")?;
    let (primary_name, secondary_name) = (
        args.mirror
            .primary
            .iter()
            .map(ToString::to_string)
            .collect::<String>(),
        args.mirror
            .secondary
            .iter()
            .map(ToString::to_string)
            .collect::<String>(),
    );
    let outbox = if args.dry_run {
        None
    } else {
        args.mirror.outbox(&primary, false)?
    };
    let drains = outbox.is_some();
    // The primary as the mirror sees it: an outbox kept in the primary
    // is the mirror's own and never compared or copied.
    let mirror = MirrorStore::new(
        primary.clone(),
        secondary.clone(),
        outbox.unwrap_or_else(|| Arc::new(StoreOutbox::new(primary.clone()))),
        WritePolicy::Refuse,
    );
    if drains {
        let drained = mirror.drain().await.with_context(|| {
            format!(
                "cannot drain the outbox {}; are both stores up?",
                args.mirror.outbox.display()
            )
        })?;
        eprintln!(
            "outbox {}: {} items copied to the secondary, {} back to the primary, {} refused (in the log)",
            args.mirror.outbox.display(),
            drained.to_secondary,
            drained.to_primary,
            drained.refused
        );
    }
    let primary: Arc<dyn ItemStore> = Arc::new(mirror);
    eprintln!("comparing {primary_name} with {secondary_name} ...");
    let comparison =
        store_migrate::verify(primary.clone(), secondary.clone(), args.segments, false)
            .await
            .context("cannot read both stores to compare them")?;
    print_comparison(&comparison);
    if comparison.is_equal() {
        println!("equal");
        return Ok(());
    }
    if args.dry_run {
        anyhow::bail!("the stores differ (--dry-run: nothing repaired)");
    }
    let repaired = store_migrate::repair(primary.as_ref(), secondary.as_ref(), &comparison)
        .await
        .context("cannot repair the secondary")?;
    println!(
        "repaired: {} items copied from the primary, {} deleted from the secondary",
        repaired.copied, repaired.deleted
    );
    let after = store_migrate::verify(primary, secondary, args.segments, false)
        .await
        .context("cannot read both stores to compare them again")?;
    print_comparison(&after);
    if !after.is_equal() {
        anyhow::bail!(
            "the stores still differ: items were written during the repair; run reconcile again"
        );
    }
    println!("equal");
    Ok(())
}
