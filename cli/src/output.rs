//! Tables and JSON on standard output.

use crate::Failure;
use serde::Serialize;
use serde_json::Value;

pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::Failed(format!("cannot print JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints left-aligned columns; cells longer than 60 characters are shortened with `…` (the JSON output is
/// never shortened).
pub fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    const MAX_CELL: usize = 60;
    let shorten = |s: &str| -> String {
        if s.chars().count() > MAX_CELL {
            let mut t: String = s.chars().take(MAX_CELL - 1).collect();
            t.push('…');
            t
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| shorten(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    if rows.is_empty() {
        println!("(none)");
    }
    for r in rows {
        line(r);
    }
}

/// The stocktaking view as a table per team, then national reports and the summary.
pub fn print_view(v: &Value) {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    println!(
        "Stocktaking {} — {}",
        text(&v["year"]),
        text(&v["federation"])
    );
    println!(
        "Chair: {}",
        if v["chair"].is_null() {
            "-".to_string()
        } else {
            text(&v["chair"]["org"]["name"])
        }
    );
    let teams = v["teams"].as_array().cloned().unwrap_or_default();
    let rows = teams
        .iter()
        .map(|t| {
            vec![
                text(&t["code"]),
                text(&t["coordinator"]["org"]["name"]),
                t["members"].as_array().map_or(0, Vec::len).to_string(),
                t["meetings"].as_array().map_or(0, Vec::len).to_string(),
                {
                    let status = text(&t["output"]["status"]);
                    if t["output"]["submission"]["late"] == true {
                        format!("{status} (late)")
                    } else {
                        status
                    }
                },
            ]
        })
        .collect();
    print_table(
        &["TEAM", "COORDINATOR", "MEMBERS", "MEETINGS", "OUTPUT"],
        rows,
    );
    if let Some(reports) = v["national_reports"].as_array() {
        println!();
        let rows = reports
            .iter()
            .map(|r| vec![text(&r["country"]), text(&r["status"])])
            .collect();
        print_table(&["COUNTRY", "NATIONAL REPORT"], rows);
    }
    if let Some(summary) = v["summary"].as_object() {
        println!();
        for (k, val) in summary {
            println!("{k:<32} {}", text(val));
        }
    }
}
