//! `wsis motion` (propose, vote, list) and `wsis coordinator nominate`: the motions a meeting decides, and the
//! nomination that follows a passed recommendation.

use super::{print_done, rows_of, s, url_part, yes_no};
use crate::client::Client;
use crate::output::{print_json, print_table};
use crate::{Failure, MotionCmd};
use serde_json::Value;
use wsis_node::api::types::{MotionRequest, MotionSpec, NominateRequest, OpDone, VoteRequest};

/// `wsis motion propose`.
#[derive(clap::Args, Debug)]
pub struct ProposeArgs {
    /// The meeting the motion is proposed in.
    #[arg(long)]
    pub meeting: String,
    /// recommend, elect, procedure, checkpoint, adopt-report
    #[arg(long)]
    pub kind: String,
    /// recommend: the team.
    #[arg(long)]
    pub team: Option<String>,
    /// recommend, elect: the organisation.
    #[arg(long)]
    pub org: Option<String>,
    /// elect: chair or co-chair.
    #[arg(long, default_value = "chair")]
    pub role: String,
    /// procedure, adopt-report: the year.
    #[arg(long)]
    pub year: Option<u16>,
    /// procedure: teams expected to submit (repeatable; default: every team).
    #[arg(long = "expect-team")]
    pub teams: Vec<String>,
    /// procedure: deadline (informational; later submissions are shown as late), milliseconds since the epoch.
    /// Default: the end of the year (31 December, 23:59:59.999 UTC).
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// procedure: required sections (repeatable; default: achievements, challenges, recommendations).
    #[arg(long = "section")]
    pub sections: Vec<String>,
    /// procedure: national implementation reports are part of the exercise.
    #[arg(long)]
    pub national_reports: bool,
    /// adopt-report: SHA-256 of the bundle's manifest.json.
    #[arg(long)]
    pub manifest_hash: Option<String>,
}

pub(super) fn motion(client: Client, cmd: MotionCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        MotionCmd::Propose(a) => {
            let need = |v: Option<String>, flag: &str| {
                v.ok_or_else(|| Failure::Usage(format!("--kind {} needs {flag}", a.kind)))
            };
            let motion = match a.kind.as_str() {
                "recommend" => MotionSpec::Recommend {
                    team: need(a.team.clone(), "--team")?,
                    org: need(a.org.clone(), "--org")?,
                },
                "elect" => MotionSpec::Elect {
                    role: a.role.clone(),
                    org: need(a.org.clone(), "--org")?,
                },
                "procedure" => MotionSpec::AdoptProcedure {
                    year: a.year.ok_or_else(|| Failure::Usage("--kind procedure needs --year".into()))?,
                    teams: a.teams.clone(),
                    deadline_ms: a
                        .deadline_ms
                        .unwrap_or_else(|| end_of_year_ms(a.year.unwrap_or(1970))),
                    sections: if a.sections.is_empty() {
                        wsis_node::api::OUTPUT_SECTIONS.iter().map(|s| s.to_string()).collect()
                    } else {
                        a.sections.clone()
                    },
                    national_reports: a.national_reports,
                },
                "checkpoint" => MotionSpec::Checkpoint,
                "adopt-report" => MotionSpec::AdoptReport {
                    year: a
                        .year
                        .ok_or_else(|| Failure::Usage("--kind adopt-report needs --year".into()))?,
                    manifest_hash: need(a.manifest_hash.clone(), "--manifest-hash")?,
                },
                other => {
                    return Err(Failure::Usage(format!(
                        "unknown motion kind `{other}` (recommend, elect, procedure, checkpoint, adopt-report)"
                    )))
                }
            };
            let done: OpDone = client.post(
                "/v1/motions",
                &MotionRequest {
                    meeting: a.meeting,
                    motion,
                },
            )?;
            print_done(&done, "proposed motion", json)
        }
        MotionCmd::Vote { motion, yes, no } => {
            let _ = no;
            let done: OpDone = client.post(
                &format!("/v1/motions/{}/vote", url_part(&motion)?),
                &VoteRequest { yes },
            )?;
            print_done(&done, if yes { "voted yes" } else { "voted no" }, json)
        }
        MotionCmd::List => {
            let v: Value = client.get("/v1/motions")?;
            if json {
                return print_json(&v);
            }
            let rows = rows_of(&v, |m| {
                vec![
                    s(m, "summary"),
                    format!("{}/{}", s(m, "yes"), s(m, "electorate")),
                    s(m, "no"),
                    yes_no(m["passed"] == true).to_string(),
                    s(m, "id"),
                ]
            });
            print_table(&["MOTION", "YES/ELECTORATE", "NO", "PASSED", "ID"], rows);
            Ok(())
        }
    }
}

/// `wsis coordinator nominate`.
pub(super) fn nominate(
    client: Client,
    team: String,
    org: String,
    recommendation: String,
    json: bool,
) -> Result<(), Failure> {
    let done: OpDone = client.post(
        "/v1/coordinators",
        &NominateRequest {
            team,
            org,
            recommendation,
        },
    )?;
    print_done(&done, "nominated", json)
}

/// Milliseconds since the epoch at the end of `year` (UTC): the start of the next year minus one.
fn end_of_year_ms(year: u16) -> u64 {
    // Days from 1970-01-01 to 1 January of `year + 1`, counting leap years (Gregorian).
    let next = u64::from(year) + 1;
    let leaps = |y: u64| y / 4 - y / 100 + y / 400;
    let days = (next - 1970) * 365 + (leaps(next - 1) - leaps(1969));
    (days * 86_400_000).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn end_of_year_is_the_last_millisecond_of_31_december() {
        // 2027-01-01T00:00:00Z is 1798761600 s after the epoch; 2024 is a leap year (1735689600 for 2025-01-01).
        assert_eq!(super::end_of_year_ms(2026), 1_798_761_600_000 - 1);
        assert_eq!(super::end_of_year_ms(2024), 1_735_689_600_000 - 1);
        assert_eq!(super::end_of_year_ms(1970), 31_536_000_000 - 1);
    }
}
