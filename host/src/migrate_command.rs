//! `edge-items migrate`: the command line of `store-migrate` (progress
//! bar, Ctrl-C, the summary); the copy and the comparison are the crate's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use host::metrics::Metrics;
use host::stores::StoreSpec;
use indicatif::{ProgressBar, ProgressStyle};
use item_store::Timestamp;
use sha2::{Digest, Sha256};
use store_migrate::{Checkpoint, CopyOptions, Difference, Progress};

/// Most differences and refused items listed; the counts are always whole.
const LISTED: usize = 50;

/// The exit code of a copy stopped by Ctrl-C (128 + SIGINT, as shells do).
const INTERRUPTED: i32 = 130;

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The store to copy from: embedded:PATH, dynamodb:TABLE[@ENDPOINT] or
    /// firestore:[PROJECT/]COLLECTION.
    #[arg(long, value_name = "STORE")]
    from: StoreSpec,

    /// The store to copy into, named the same way.
    #[arg(long, value_name = "STORE")]
    to: StoreSpec,

    /// Segments read (and written) in parallel.
    #[arg(long, value_name = "N", default_value_t = 4)]
    segments: u32,

    /// Items per page and per batch written, 1 to 100.
    #[arg(long, value_name = "N", default_value_t = 100)]
    page_size: u32,

    /// Copy only items updated at or after this time (RFC 3339): the
    /// catch-up after a first copy (see docs/multi-cloud.md).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Copy expired items the source has not removed yet, too.
    #[arg(long)]
    include_expired: bool,

    /// Where progress is saved after every page [default:
    /// .data/migrations/<a name derived from --from, --to, --segments and
    /// --since>.json].
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,

    /// Start over, ignoring a saved checkpoint.
    #[arg(long)]
    restart: bool,

    /// After the copy, compare both stores item by item and list the
    /// differences; exit 1 if there are any.
    #[arg(long)]
    verify: bool,

    /// With --verify or --verify-only: delete from the target the items
    /// only it has (deleted on the source after they were copied), the last
    /// step before a cutover.
    #[arg(long)]
    prune: bool,

    /// Only compare, copy nothing.
    #[arg(long, conflicts_with_all = ["since", "restart"])]
    verify_only: bool,

    /// Skip counting the source first: faster, but the progress bar then
    /// shows no total and no ETA.
    #[arg(long)]
    no_count: bool,
}

/// The progress bar, told of every page.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn advanced(&self, items: u64) {
        self.0.inc(items);
    }
}

pub(crate) async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    if args.from.to_string() == args.to.to_string() {
        // A copy onto itself would rewrite every item with a new version.
        anyhow::bail!("--from and --to name the same store ({})", args.from);
    }
    let metrics = Arc::new(Metrics::new());
    let from = args
        .from
        .open(&metrics)
        .await
        .with_context(|| format!("cannot open {}", args.from))?;
    let to = args
        .to
        .open(&metrics)
        .await
        .with_context(|| format!("cannot open {}", args.to))?;
    if !args.verify_only {
        copy(&args, from.clone(), to.clone()).await?;
    }
    if args.prune && !(args.verify || args.verify_only) {
        anyhow::bail!("--prune deletes what a comparison finds: add --verify or --verify-only");
    }
    if args.verify || args.verify_only {
        verify(&args, from, to).await?;
    }
    Ok(())
}

async fn copy(
    args: &MigrateArgs,
    from: Arc<dyn item_store::ItemStore>,
    to: Arc<dyn item_store::ItemStore>,
) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|text| {
            Timestamp::parse(text)
                .map(|t| t.to_string())
                .with_context(|| format!("--since {text} is no RFC 3339 time"))
        })
        .transpose()?;
    let options = CopyOptions {
        segments: args.segments,
        page_size: args.page_size,
        updated_since: since.clone(),
        include_expired: args.include_expired,
        ..CopyOptions::default()
    };
    let migration = format!(
        "{} -> {}, {} segments, {}{}",
        args.from,
        args.to,
        args.segments,
        since
            .as_deref()
            .map_or("everything".to_owned(), |s| format!("since {s}")),
        if args.include_expired {
            ", expired too"
        } else {
            ""
        },
    );
    let path = args.checkpoint.clone().unwrap_or_else(|| {
        let name = hex::encode(&Sha256::digest(migration.as_bytes())[..8]);
        PathBuf::from(".data/migrations").join(format!("{name}.json"))
    });
    let checkpoint = Checkpoint::open(
        &path,
        &migration,
        args.segments,
        &Timestamp::now().to_string(),
        args.restart,
    )?;
    let started_at = checkpoint.started_at.clone();
    if checkpoint.is_complete() {
        eprintln!(
            "{migration}: already complete (checkpoint {}); pass --restart to copy again",
            path.display()
        );
        return Ok(());
    }
    if checkpoint.is_resumed() {
        eprintln!(
            "resuming {migration} from checkpoint {} ({} items copied before)",
            path.display(),
            checkpoint.copied()
        );
    }
    let done_before = checkpoint.handled();

    let bar = if args.no_count {
        ProgressBar::new_spinner()
    } else {
        eprintln!("counting the items of {} ...", args.from);
        let total = store_migrate::count(
            from.clone(),
            args.segments,
            since.clone(),
            args.include_expired,
        )
        .await
        .with_context(|| format!("cannot count the items of {}", args.from))?;
        ProgressBar::new(total.max(done_before))
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} items, {per_sec}, ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(done_before);

    let stop = Arc::new(AtomicBool::new(false));
    let on_ctrl_c = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.store(true, Ordering::SeqCst);
        }
    });
    let began = Instant::now();
    let progress = Arc::new(Bar(bar.clone()));
    let report = store_migrate::copy(from, to, &options, checkpoint, progress, stop).await;
    bar.finish_and_clear();
    let report = report.with_context(|| {
        format!(
            "the copy stopped; its checkpoint {} is saved, so the same command resumes it",
            path.display()
        )
    })?;
    let seconds = began.elapsed().as_secs_f64();
    eprintln!(
        "copied {} items in {seconds:.1} s ({:.0}/s); {} expired items passed over; {} refused by the target",
        report.copied,
        report.copied as f64 / seconds.max(0.001),
        report.skipped_expired,
        report.refused.len()
    );
    for refused in report.refused.iter().take(LISTED) {
        eprintln!("  refused {}: {}", refused.id, refused.reason);
    }
    if report.interrupted {
        eprintln!(
            "interrupted: checkpoint {} is saved; run the same command to resume",
            path.display()
        );
        std::process::exit(INTERRUPTED);
    }
    let catch_up = Timestamp::parse(&started_at)
        .map(|t| Timestamp::from_micros(t.as_micros() - 60_000_000).to_string())
        .unwrap_or(started_at);
    eprintln!(
        "complete. To copy what was written during the copy, run it again with --since {catch_up} (its start, less a minute for clock skew)"
    );
    if !report.refused.is_empty() {
        anyhow::bail!(
            "{} items were not copied because {} cannot hold them (listed above)",
            report.refused.len(),
            args.to
        );
    }
    Ok(())
}

async fn verify(
    args: &MigrateArgs,
    from: Arc<dyn item_store::ItemStore>,
    to: Arc<dyn item_store::ItemStore>,
) -> anyhow::Result<()> {
    eprintln!("comparing {} with {} ...", args.from, args.to);
    let mut comparison =
        store_migrate::verify(from, to.clone(), args.segments, args.include_expired)
            .await
            .context("cannot read both stores to compare them")?;
    print_comparison(&comparison);
    if args.prune {
        let pruned = store_migrate::prune(to.as_ref(), &comparison)
            .await
            .context("cannot delete the items only the target has")?;
        println!("pruned {pruned} items only in target");
        comparison
            .differences
            .retain(|d| !matches!(d, Difference::OnlyInTarget(_)));
    }
    if !comparison.is_equal() {
        anyhow::bail!("the stores differ");
    }
    println!("equal");
    Ok(())
}

/// Prints the counts and the first differences of a comparison.
pub(crate) fn print_comparison(comparison: &store_migrate::Comparison) {
    println!(
        "source: {} items, target: {} items, differences: {}",
        comparison.source_items,
        comparison.target_items,
        comparison.differences.len()
    );
    for difference in comparison.differences.iter().take(LISTED) {
        match difference {
            Difference::MissingInTarget(id) => println!("  missing in target: {id}"),
            Difference::OnlyInTarget(id) => println!("  only in target:    {id}"),
            Difference::Changed(id) => println!("  different:         {id}"),
        }
    }
    if comparison.differences.len() > LISTED {
        println!("  ... and {} more", comparison.differences.len() - LISTED);
    }
}
