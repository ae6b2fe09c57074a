//! The Chair's report to the UN Secretary-General, rendered from a [`VerifiedBundle`] (never from unverified
//! data) as a self-contained HTML page or as Markdown.
//!
//! Per team: the coordinator, the members by stakeholder type, the meetings held and their approved minutes, the
//! output (achievements, challenges, recommendations, activities) and its status; then the national
//! implementation reports and an overall summary. Contested, late and missing items are shown with a marker and
//! listed again under "Items needing attention"; nothing is left out because it is inconvenient.
//!
//! Documents are read with the content schema's readers ([`crate::content`], the module the node's API writes
//! them with): an output draft's output sections and activities, a national report's sections (whatever names it
//! has), a meeting record's minutes. Anything else is shown as "(section missing)" or "(unreadable)", never a
//! panic. Rendering is a pure function of the bundle: the same bundle gives the same bytes.

use crate::bundle::{AttestedBy, VerifiedBundle};
use crate::content::{self, text_of};
use crate::ids::{DocId, OrgId};
use crate::op::StakeholderType;
use crate::reference::reference;
use crate::view::{MeetingView, OrgRef, Status, SubmissionView, TeamView};
use serde_json::Value;
use std::fmt::Write as _;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// One self-contained HTML page with a small inline style sheet; every text is escaped.
    Html,
    /// CommonMark, with Markdown's special characters escaped in every text taken from the bundle.
    Markdown,
}

/// Blocks of the report, rendered to either format.
enum Block {
    Heading(u8, String),
    Para(String),
    /// A paragraph with a visible marker: something contested, late or missing.
    Attention(String),
    List(Vec<String>),
    Table(Vec<String>, Vec<Vec<String>>),
    /// Longer quoted text from a document.
    Quote(String),
}

/// Renders the report.
pub fn render(bundle: &VerifiedBundle, format: Format) -> String {
    let blocks = build(bundle);
    match format {
        Format::Html => html(bundle, &blocks),
        Format::Markdown => markdown(&blocks),
    }
}

fn stakeholder_name(t: StakeholderType) -> &'static str {
    match t {
        StakeholderType::Government => "Government",
        StakeholderType::PrivateSector => "Private sector",
        StakeholderType::CivilSociety => "Civil society",
        StakeholderType::InternationalOrganisation => "International organisation",
        StakeholderType::Academia => "Academia",
        StakeholderType::TechnicalCommunity => "Technical community",
    }
}

fn team_title(code: &str, fallback: &str) -> String {
    reference()
        .action_lines
        .iter()
        .find(|a| a.code == code)
        .map_or_else(|| fallback.to_string(), |a| a.title.clone())
}

/// A UTC date from milliseconds since the epoch (days-to-civil, proleptic Gregorian).
fn date(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The names of some organisations, for a sentence.
fn names(orgs: &[OrgRef]) -> String {
    orgs.iter()
        .map(|o| o.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Shows `line` with a marker where it stands and lists `summary` (the line with what it is about: a team, a
/// country) under "Items needing attention".
fn flag(out: &mut Vec<Block>, attention: &mut Vec<String>, summary: String, line: String) {
    attention.push(summary);
    out.push(Block::Attention(line));
}

fn status_line(status: Status, sub: Option<&SubmissionView>) -> (bool, String) {
    let s = match status {
        Status::Submitted => "submitted".to_string(),
        Status::Missing => "MISSING: no output was submitted".to_string(),
        Status::Contested => format!(
            "CONTESTED: concurrent submissions ({}); the one with the lowest id is shown",
            sub.map(|s| {
                std::iter::once(s.op.to_string())
                    .chain(s.contested_with.iter().map(|o| o.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
        ),
        Status::DocumentMissing => {
            "DOCUMENT MISSING: the attested document is not available".into()
        }
        Status::HashMismatch => {
            "HASH MISMATCH: the document does not match what was attested".into()
        }
    };
    let late = sub.is_some_and(|s| s.late);
    let attention = status != Status::Submitted || late;
    (
        attention,
        if late {
            format!("{s}; LATE: submitted after the deadline")
        } else {
            s
        },
    )
}

fn build(b: &VerifiedBundle) -> Vec<Block> {
    let v = &b.view;
    let name = |id: &OrgId| b.replica.org(id).map_or_else(|| id.to_string(), |o| o.name);
    let docs_map = &b.documents;
    let doc = |d: &DocId| docs_map.get(d);
    let mut out = Vec::new();
    let mut attention: Vec<String> = Vec::new();

    out.push(Block::Heading(
        1,
        format!(
            "Report of the Chair of the Meeting of the coordinators to the Secretary-General of the United Nations on the implementation of the WSIS outcomes, {}",
            v.year
        ),
    ));
    let chair = v
        .chair
        .as_ref()
        .map_or_else(|| "(no Chair)".to_string(), |c| c.org.name.clone());
    out.push(Block::Para(format!(
        "Federation {} ({}). Prepared by the Chair, {chair}, from the stocktaking bundle closed by checkpoint {} ({} yes and {} no of {} coordinators) (manifest SHA-256 {}). Everything below was recomputed from the signed governance record and the attested documents by the offline verifier.",
        v.federation_name,
        v.federation,
        b.manifest.header.closing_checkpoint,
        b.closing.yes,
        b.closing.no,
        b.closing.electorate,
        b.manifest_hash
    )));
    if let Some(c) = v.chair.as_ref().filter(|c| !c.contested_with.is_empty()) {
        let msg = format!(
            "The election of the Chair was contested: {} won against {}.",
            c.org.name,
            names(&c.contested_with)
        );
        flag(&mut out, &mut attention, msg.clone(), msg);
    }
    if !v.co_chairs.is_empty() {
        out.push(Block::Para(format!("Co-Chairs: {}.", names(&v.co_chairs))));
    }
    match &v.procedure {
        Some(p) => out.push(Block::Para(format!(
            "Procedure (motion {}): outputs expected from {}; deadline {}; required sections: {}; national reports {}.",
            p.motion,
            if p.teams.is_empty() {
                "every team".to_string()
            } else {
                p.teams.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
            },
            date(p.deadline_ms),
            if p.required_sections.is_empty() {
                "none".to_string()
            } else {
                p.required_sections.join(", ")
            },
            if p.national_reports { "invited" } else { "not part of this exercise" }
        ))),
        None => out.push(Block::Attention("No procedure was adopted for this year.".into())),
    }

    // Summary.
    let s = &v.summary;
    out.push(Block::Heading(2, "Overall stocktaking summary".into()));
    out.push(Block::Table(
        vec!["".into(), "count".into()],
        [
            ("teams", s.teams),
            ("teams expected to submit an output", s.teams_expected),
            ("outputs submitted", s.outputs_submitted),
            ("outputs missing", s.outputs_missing),
            ("outputs contested", s.outputs_contested),
            (
                "outputs with document problems",
                s.outputs_with_document_problems,
            ),
            ("outputs submitted late", s.outputs_late),
            ("national implementation reports", s.national_reports),
            ("team meetings held", s.meetings_held),
            ("meeting records approved", s.records_approved),
            ("contested roles", s.contested_roles),
        ]
        .iter()
        .map(|(k, n)| vec![k.to_string(), n.to_string()])
        .collect(),
    ));
    let attention_at = out.len();

    // Teams.
    out.push(Block::Heading(2, "Multi-stakeholder teams".into()));
    let sections = content::OUTPUT_SECTIONS;
    let required = v
        .procedure
        .as_ref()
        .map(|p| p.required_sections.clone())
        .unwrap_or_default();
    // Reference order (C1, C2, …, C7.x, …, C11), not byte order; teams with nothing to report and not expected this
    // year are listed together at the end.
    let rank = |code: &str| {
        reference()
            .action_lines
            .iter()
            .position(|a| a.code == code)
            .unwrap_or(usize::MAX)
    };
    let mut teams: Vec<&TeamView> = v.teams.iter().collect();
    teams.sort_by_key(|t| (rank(t.code.as_str()), t.code.clone()));
    let idle = |t: &TeamView| {
        !t.expected
            && t.coordinator.is_none()
            && t.members.is_empty()
            && t.meetings.is_empty()
            && t.output.submission.is_none()
    };
    for t in teams.iter().filter(|t| !idle(t)) {
        team_blocks(
            &mut out,
            &mut attention,
            t,
            &sections,
            &required,
            &name,
            docs_map,
        );
    }
    let quiet: Vec<String> = teams
        .iter()
        .filter(|t| idle(t))
        .map(|t| format!("{}: {}", t.code, team_title(t.code.as_str(), &t.name)))
        .collect();
    if !quiet.is_empty() {
        out.push(Block::Heading(
            3,
            "Teams not expected to report this year".into(),
        ));
        out.push(Block::Para(
            "No coordinator, no members, no meetings and no output recorded for:".into(),
        ));
        out.push(Block::List(quiet));
    }

    // National reports.
    out.push(Block::Heading(2, "National implementation reports".into()));
    if v.national_reports.is_empty() {
        out.push(Block::Para(
            "No national implementation report was submitted.".into(),
        ));
    }
    for r in &v.national_reports {
        out.push(Block::Heading(3, format!("{}", r.country)));
        let (att, line) = status_line(r.status, Some(&r.submission));
        let line = format!(
            "Status: {line}. Submitted by {} (submission {}).",
            r.submission.submitted_by.name, r.submission.op
        );
        if att {
            flag(
                &mut out,
                &mut attention,
                format!("National report {}: {line}", r.country),
                line,
            );
        } else {
            out.push(Block::Para(line));
        }
        let mut docs = vec![r.submission.doc];
        // Contested reports: show every competing document, not only the one the view shows.
        for op in &r.submission.contested_with {
            if let Some(a) = b
                .attested
                .iter()
                .find(|a| a.by == AttestedBy::Submission(*op))
            {
                docs.push(a.doc);
            }
        }
        let several = docs.len() > 1;
        for d in docs {
            if several {
                out.push(Block::Para(format!("Document {d}:")));
            }
            match doc(&d).and_then(content::sections) {
                Some(secs) if !secs.is_empty() => {
                    for (k, val) in secs {
                        out.push(Block::Heading(4, k.clone()));
                        out.push(Block::Quote(
                            text_of(Some(val)).unwrap_or_else(|| "(section missing)".into()),
                        ));
                    }
                }
                _ => out.push(Block::Para("(sections missing)".into())),
            }
        }
    }

    // Attention list, placed after the summary.
    let mut att_blocks = vec![Block::Heading(2, "Items needing attention".into())];
    if attention.is_empty() {
        att_blocks.push(Block::Para(
            "None: every expected output was submitted on time, uncontested, with its document."
                .into(),
        ));
    } else {
        att_blocks.push(Block::List(attention));
    }
    out.splice(attention_at..attention_at, att_blocks);
    out
}

#[allow(clippy::too_many_arguments)]
fn team_blocks(
    out: &mut Vec<Block>,
    attention: &mut Vec<String>,
    t: &TeamView,
    sections: &[&str],
    required: &[String],
    name: &dyn Fn(&OrgId) -> String,
    docs: &std::collections::BTreeMap<DocId, Value>,
) {
    let doc = |d: &DocId| docs.get(d);
    let code = t.code.as_str();
    out.push(Block::Heading(
        3,
        format!("{code}: {}", team_title(code, &t.name)),
    ));
    match &t.coordinator {
        Some(c) => {
            out.push(Block::Para(format!("Coordinator: {}.", c.org.name)));
            if !c.contested_with.is_empty() {
                let msg = format!(
                    "{code}: the coordinator's nomination was contested ({} won against {}).",
                    c.org.name,
                    names(&c.contested_with)
                );
                flag(out, attention, msg.clone(), msg);
            }
        }
        None => out.push(Block::Para("Coordinator: none nominated.".into())),
    }
    if let Some(m) = &t.modalities {
        out.push(Block::Para(format!("Coordination modalities: {m}")));
    }
    // Members by stakeholder type.
    if t.members.is_empty() {
        out.push(Block::Para("Members: none.".into()));
    } else {
        let rows: Vec<Vec<String>> = t
            .members_by_stakeholder
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(st, n)| {
                let names: Vec<String> = t
                    .members
                    .iter()
                    .filter(|m| m.stakeholder == *st)
                    .map(|m| m.name.clone())
                    .collect();
                vec![
                    stakeholder_name(*st).to_string(),
                    n.to_string(),
                    names.join(", "),
                ]
            })
            .collect();
        out.push(Block::Table(
            vec![
                "stakeholder type".into(),
                "members".into(),
                "organisations".into(),
            ],
            rows,
        ));
    }
    // Meetings.
    let held: Vec<&MeetingView> = t.meetings.iter().collect();
    if held.is_empty() {
        out.push(Block::Para("Meetings held: none.".into()));
    }
    for m in held {
        let approved = m.record == "approved";
        let line = format!(
            "Meeting \u{201c}{}\u{201d} convened by {}, {} attendee(s); record {}.",
            m.title,
            m.convener.name,
            m.attendees,
            if approved {
                format!("approved by {}", names(&m.approvers))
            } else {
                "NOT APPROVED".to_string()
            }
        );
        if approved {
            out.push(Block::Para(line));
        } else {
            flag(out, attention, format!("{code}: {line}"), line);
            continue;
        }
        match doc(&DocId(m.id.0)).and_then(content::minutes) {
            Some(items) if !items.is_empty() => out.push(Block::List(
                items
                    .into_iter()
                    .map(|i| {
                        let by = i.by.map_or_else(|| "(unknown)".to_string(), |o| name(&o));
                        let text = i.text.unwrap_or_else(|| "(unreadable)".into());
                        format!("{by}: {text}")
                    })
                    .collect(),
            )),
            _ => out.push(Block::Para("(minutes missing)".into())),
        }
    }
    // Output.
    let (att, line) = status_line(t.output.status, t.output.submission.as_ref());
    let expected = if t.expected {
        ""
    } else {
        " (not expected this year)"
    };
    let who = t.output.submission.as_ref().map_or_else(String::new, |s| {
        format!(
            " Submitted by {} (submission {}).",
            s.submitted_by.name, s.op
        )
    });
    let line = format!("Output{expected}: {line}.{who}");
    if att && (t.expected || t.output.status != Status::Missing) {
        flag(out, attention, format!("{code}: {line}"), line);
    } else {
        out.push(Block::Para(line));
    }
    let Some(sub) = &t.output.submission else {
        return;
    };
    let Some(d) = doc(&sub.doc) else {
        out.push(Block::Para("(document not in the bundle)".into()));
        return;
    };
    for s in sections {
        out.push(Block::Heading(4, capitalise(s)));
        out.push(Block::Quote(
            content::section(d, s).unwrap_or_else(|| "(section missing)".into()),
        ));
    }
    let missing_required: Vec<&String> = required
        .iter()
        .filter(|r| content::section(d, r).is_none_or(|t| t.trim().is_empty()))
        .collect();
    if !missing_required.is_empty() {
        let msg = format!(
            "{code}: required section(s) missing or empty: {}.",
            missing_required
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        flag(out, attention, msg.clone(), msg);
    }
    out.push(Block::Heading(4, "Activities".into()));
    match content::activities(d) {
        Some(items) if !items.is_empty() => out.push(Block::List(items)),
        _ => out.push(Block::Para("(section missing)".into())),
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// HTML

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:Georgia,serif;max-width:52em;margin:2em auto;padding:0 1em;line-height:1.45;color:#111}\
h1{font-size:1.5em}h2{border-bottom:1px solid #999;margin-top:2em}h4{margin-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}\
.attention{background:#fff3cd;border-left:4px solid #b58100;padding:.3em .6em}\
blockquote{white-space:pre-wrap;margin:.2em 0 .8em 1em;padding-left:.8em;border-left:3px solid #ccc}";

fn html(b: &VerifiedBundle, blocks: &[Block]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape_html(&format!("WSIS stocktaking report {}", b.year))
    );
    for block in blocks {
        match block {
            Block::Heading(l, t) => {
                let _ = writeln!(o, "<h{l}>{}</h{l}>", escape_html(t));
            }
            Block::Para(t) => {
                let _ = writeln!(o, "<p>{}</p>", escape_html(t));
            }
            Block::Attention(t) => {
                let _ = writeln!(o, "<p class=\"attention\">&#9888; {}</p>", escape_html(t));
            }
            Block::Quote(t) => {
                let _ = writeln!(o, "<blockquote>{}</blockquote>", escape_html(t));
            }
            Block::List(items) => {
                o.push_str("<ul>\n");
                for i in items {
                    let _ = writeln!(o, "<li>{}</li>", escape_html(i));
                }
                o.push_str("</ul>\n");
            }
            Block::Table(head, rows) => {
                o.push_str("<table>\n<tr>");
                for h in head {
                    let _ = write!(o, "<th>{}</th>", escape_html(h));
                }
                o.push_str("</tr>\n");
                for r in rows {
                    o.push_str("<tr>");
                    for c in r {
                        let _ = write!(o, "<td>{}</td>", escape_html(c));
                    }
                    o.push_str("</tr>\n");
                }
                o.push_str("</table>\n");
            }
        }
    }
    o.push_str("</body>\n</html>\n");
    o
}

// ---------------------------------------------------------------------------------------------------------------
// Markdown

/// Escapes text for Markdown: backslash-escapes the characters that could start markup, and turns line breaks into
/// spaces (callers that keep lines escape each line).
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn markdown(blocks: &[Block]) -> String {
    let mut o = String::new();
    for block in blocks {
        match block {
            Block::Heading(l, t) => {
                let _ = writeln!(o, "{} {}\n", "#".repeat(*l as usize), escape_markdown(t));
            }
            Block::Para(t) => {
                let _ = writeln!(o, "{}\n", escape_markdown(t));
            }
            Block::Attention(t) => {
                let _ = writeln!(o, "**\u{26a0} {}**\n", escape_markdown(t));
            }
            Block::Quote(t) => {
                for line in t.lines() {
                    let _ = writeln!(o, "> {}", escape_markdown(line));
                }
                if t.is_empty() {
                    o.push_str(">\n");
                }
                o.push('\n');
            }
            Block::List(items) => {
                for i in items {
                    let _ = writeln!(o, "- {}", escape_markdown(i));
                }
                o.push('\n');
            }
            Block::Table(head, rows) => {
                let row = |cells: &[String]| {
                    format!(
                        "| {} |",
                        cells
                            .iter()
                            .map(|c| escape_markdown(c))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                let _ = writeln!(o, "{}", row(head));
                let _ = writeln!(o, "|{}", "---|".repeat(head.len()));
                for r in rows {
                    let _ = writeln!(o, "{}", row(r));
                }
                o.push('\n');
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape_html("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(
            escape_markdown("# *a* | [b](c)\n<i>"),
            "\\# \\*a\\* \\| \\[b\\](c) \\<i\\>"
        );
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_767_225_600_000), "2026-01-01");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }
}
