//! `talos-dr snapshot ...`: the command-line face of the inspector.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::{
    KeyChangeKind, Restorability, RestoreOutcome, SnapshotKind, StatusSemantics, humanize_bytes,
};

/// Output format of `snapshot status`, the same four etcdctl 3.4 offers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StatusFormat {
    #[default]
    Simple,
    Json,
    Table,
    Fields,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SnapshotCommand {
    /// Print what `etcdctl snapshot status` prints for FILE, byte for byte.
    Status {
        file: PathBuf,
        /// Output format: simple, json, table or fields.
        #[arg(short = 'w', long = "write-out", value_enum, default_value = "simple")]
        write_out: StatusFormat,
        /// Use etcd 3.6 semantics: count live keys and add the version column.
        #[arg(long = "etcd-3.6")]
        etcd_36: bool,
    },
    /// Exit 0 when `etcdctl snapshot restore` would accept FILE, otherwise say why.
    Verify {
        file: PathBuf,
        /// Judge as `etcdctl snapshot restore --skip-hash-check` would.
        #[arg(long)]
        skip_hash_check: bool,
        /// Print the full verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What the snapshot holds: keys per resource and namespace, leases, revisions.
    Inspect {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// What restoring OLD instead of NEW would lose or bring back.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long)]
        json: bool,
        /// Page of key names to list (0-based).
        #[arg(long, default_value_t = 0)]
        page: usize,
        /// Key names per page.
        #[arg(long, default_value_t = 50)]
        page_size: usize,
    },
}

/// Runs a snapshot subcommand, printing to stdout/stderr.
pub fn run(cmd: SnapshotCommand) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = run_to(cmd, &mut stdout.lock(), &mut stderr.lock());
    ExitCode::from(code)
}

/// Runs a snapshot subcommand against any writers; returns the process exit code.
pub fn run_to(cmd: SnapshotCommand, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let result = match cmd {
        SnapshotCommand::Status {
            file,
            write_out,
            etcd_36,
        } => status(&file, write_out, etcd_36, out),
        SnapshotCommand::Verify {
            file,
            skip_hash_check,
            json,
        } => verify(&file, skip_hash_check, json, out, err),
        SnapshotCommand::Inspect { file, json } => inspect(&file, json, out),
        SnapshotCommand::Diff {
            old,
            new,
            json,
            page,
            page_size,
        } => diff(&old, &new, json, page, page_size, out),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "Error: {message}");
            1
        }
    }
}

fn emit(out: &mut dyn Write, text: &str) -> Result<(), String> {
    out.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write output: {e}"))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}

fn status(
    file: &Path,
    format: StatusFormat,
    etcd_36: bool,
    out: &mut dyn Write,
) -> Result<u8, String> {
    let snapshot = crate::open(file).map_err(|e| e.to_string())?;
    let sem = if etcd_36 {
        StatusSemantics::Etcd36
    } else {
        StatusSemantics::Etcd35
    };
    let status = snapshot.status_for(sem).map_err(|e| e.to_string())?;
    if let (StatusSemantics::Etcd36, Some(e)) = (sem, &status.etcd_36_error) {
        return Err(e.clone());
    }
    let text = match format {
        StatusFormat::Simple => status.format_simple(sem),
        StatusFormat::Json => status.format_json(sem),
        StatusFormat::Table => status.format_table(sem),
        StatusFormat::Fields => status.format_fields(sem),
    };
    emit(out, &text)?;
    Ok(0)
}

fn outcome_text(o: &RestoreOutcome) -> String {
    match &o.reason {
        None => "restores".to_string(),
        Some(r) => format!("will not restore: {r}"),
    }
}

fn verify(
    file: &Path,
    skip: bool,
    as_json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, String> {
    let snapshot = crate::open(file).map_err(|e| e.to_string())?;
    let v = snapshot.verify(skip);
    if as_json {
        emit(out, &json(&v)?)?;
    } else {
        let kind = match v.kind {
            SnapshotKind::SnapshotWithTrailer => "etcd snapshot with sha256 trailer",
            SnapshotKind::RawDatabaseCopy => "raw etcd database copy (no sha256 trailer)",
            SnapshotKind::Damaged => "damaged",
        };
        let trailer = match v.trailer.matches {
            None => "none (file length is not 32 past a 512-byte boundary)".to_string(),
            Some(true) => "present, sha256 matches the database part".to_string(),
            Some(false) => "present, sha256 does NOT match the database part".to_string(),
        };
        let mut text = format!("{}: {kind}\n", file.display());
        text += &format!("  trailer:    {trailer}\n");
        text += &format!(
            "  length:     {} ({} bytes)\n",
            v.length.message, v.length.file_len
        );
        text += &format!("  structure:  {} problem(s)\n", v.problem_count);
        for p in v.problems.iter().take(10) {
            text += &format!("    - {}\n", p.message);
        }
        for p in &v.content_problems {
            text += &format!("    - {p}\n");
        }
        text += &format!(
            "  etcdctl snapshot restore:                   {}\n",
            outcome_text(&v.without_skip_hash_check)
        );
        text += &format!(
            "  etcdctl snapshot restore --skip-hash-check: {}\n",
            outcome_text(&v.with_skip_hash_check)
        );
        let verdict = match v.restorability {
            Restorability::Restores => "restores",
            Restorability::RestoresOnlyWithSkipHashCheck => "restores only with --skip-hash-check",
            Restorability::WillNotRestore => "will not restore",
        };
        text += &format!("verdict: {verdict}\n");
        emit(out, &text)?;
    }
    if v.restores {
        Ok(0)
    } else {
        let _ = writeln!(err, "Error: {}", v.reason.unwrap_or_default());
        Ok(1)
    }
}

fn inspect(file: &Path, as_json: bool, out: &mut dyn Write) -> Result<u8, String> {
    let snapshot = crate::open(file).map_err(|e| e.to_string())?;
    let status = snapshot.status().map_err(|e| e.to_string())?;
    let contents = snapshot.contents().map_err(|e| e.to_string())?;
    if as_json {
        #[derive(serde::Serialize)]
        struct Inspection<'a> {
            status: &'a crate::SnapshotStatus,
            contents: &'a crate::SnapshotContents,
        }
        emit(
            out,
            &json(&Inspection {
                status: &status,
                contents: &contents,
            })?,
        )?;
        return Ok(0);
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    let mut t = format!("{}\n", file.display());
    t += &format!(
        "  revision:            {} (effective {})\n",
        status.revision, status.effective_revision
    );
    t += &format!(
        "  compact revision:    {}\n",
        opt(status.compact_revision.map(|r| r.to_string()))
    );
    t += &format!(
        "  consistent index:    {}   term: {}\n",
        opt(status.consistent_index.map(|r| r.to_string())),
        opt(status.term.map(|r| r.to_string()))
    );
    t += &format!(
        "  storage version:     {}\n",
        opt(status.storage_version.clone())
    );
    t += &format!("  hash:                {:x}\n", status.hash);
    t += &format!(
        "  total size:          {} ({})\n",
        status.total_size,
        humanize_bytes(status.total_size)
    );
    t += &format!("  entries (etcd<=3.5): {}\n", status.total_key_entries);
    t += &format!(
        "  live keys (etcd>=3.6): {}   value bytes: {}   newest mod revision: {}\n",
        contents.live_keys, contents.value_bytes, contents.newest_mod_revision
    );
    t += &format!(
        "  leases: {} ({} keys attached to unknown leases)\n",
        contents.leases.len(),
        contents.keys_with_unknown_lease
    );
    t += "\nRESOURCE                                   KEYS     VALUE BYTES  NAMESPACES\n";
    for r in &contents.resources {
        t += &format!(
            "{:<40} {:>7} {:>15}  {}\n",
            r.resource,
            r.keys,
            r.value_bytes,
            r.namespaces.len()
        );
    }
    t += "\nNAMESPACE                                  KEYS     VALUE BYTES\n";
    for (ns, c) in &contents.namespaces {
        let name = if ns.is_empty() {
            "(cluster-scoped)"
        } else {
            ns
        };
        t += &format!("{:<40} {:>7} {:>15}\n", name, c.keys, c.value_bytes);
    }
    emit(out, &t)?;
    Ok(0)
}

fn diff(
    old: &Path,
    new: &Path,
    as_json: bool,
    page: usize,
    page_size: usize,
    out: &mut dyn Write,
) -> Result<u8, String> {
    let o = crate::open(old).map_err(|e| e.to_string())?;
    let n = crate::open(new).map_err(|e| e.to_string())?;
    let d = crate::diff(&o, &n, page, page_size).map_err(|e| e.to_string())?;
    if as_json {
        emit(out, &json(&d)?)?;
        return Ok(0);
    }
    let mut t = format!(
        "OLD {}\nNEW {}\n{}\n\n",
        old.display(),
        new.display(),
        d.summary()
    );
    t += "RESOURCE                                 NAMESPACE              LOST  BROUGHT BACK  REVERTED\n";
    for g in &d.groups {
        let ns = g.namespace.as_deref().unwrap_or("(cluster-scoped)");
        t += &format!(
            "{:<40} {:<20} {:>6} {:>13} {:>9}\n",
            g.resource, ns, g.counts.added, g.counts.removed, g.counts.changed
        );
    }
    let first = page.saturating_mul(d.page_size);
    t += &format!(
        "\nkeys {}-{} of {}:\n",
        first + usize::from(!d.keys.is_empty()),
        first + d.keys.len(),
        d.total_key_changes
    );
    for k in &d.keys {
        let what = match k.change {
            KeyChangeKind::Added => "lost",
            KeyChangeKind::Removed => "brought back",
            KeyChangeKind::Changed => "reverted",
        };
        t += &format!("  {what:<13} {}\n", k.key);
    }
    emit(out, &t)?;
    Ok(0)
}
