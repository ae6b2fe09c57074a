//! Researched facts about the WSIS implementation mechanism, shipped with the crate: the 18 action-line teams,
//! their facilitators, the organisations that facilitate, stakeholder types and the annual-output sections.
//!
//! The data file `protocol/data/wsis-reference.json` keeps its sources in its `about` and `*_note` fields
//! (Geneva Plan of Action 2003, Tunis Agenda 2005 paras 108–110 and Annex, ITU WSIS Forum and Stocktaking pages).

use crate::op::{Team, TeamCode};
use std::sync::OnceLock;

/// The raw reference file.
pub const REFERENCE_JSON: &str = include_str!("../data/wsis-reference.json");

/// One action line from the reference data.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ActionLine {
    pub code: String,
    pub title: String,
    pub parent: Option<String>,
    #[serde(default)]
    pub is_parent: bool,
    pub lead_facilitator: Option<String>,
    #[serde(default)]
    pub co_facilitators: Vec<String>,
}

/// An organisation from the reference data.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ReferenceOrg {
    pub acronym: String,
    pub name: String,
    pub stakeholder_type: String,
}

/// The parsed reference data.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Reference {
    pub about: String,
    pub secretariat: Vec<String>,
    pub organisations: Vec<ReferenceOrg>,
    pub action_lines: Vec<ActionLine>,
    pub annual_output_sections: Vec<String>,
}

/// The reference data, parsed once.
pub fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    // The file is part of the crate and checked by a unit test; failing to parse it is a build defect.
    REF.get_or_init(|| serde_json::from_str(REFERENCE_JSON).expect("shipped reference data parses"))
}

/// The 18 multi-stakeholder teams: C1–C6, the eight C7 sub-lines, C8–C11 (C7 itself is only a grouping).
pub fn wsis_teams() -> Vec<Team> {
    reference()
        .action_lines
        .iter()
        .filter(|a| !a.is_parent)
        .filter_map(|a| {
            Some(Team {
                code: TeamCode::new(&a.code).ok()?,
                name: a.title.clone(),
            })
        })
        .collect()
}

/// The lead facilitator (acronym) of a team, per current practice.
pub fn lead_facilitator(team: &str) -> Option<&'static str> {
    reference()
        .action_lines
        .iter()
        .find(|a| a.code == team)?
        .lead_facilitator
        .as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_teams_with_valid_codes_and_a_lead_each() {
        let teams = wsis_teams();
        assert_eq!(teams.len(), 18);
        for t in &teams {
            assert!(lead_facilitator(t.code.as_str()).is_some(), "{}", t.code);
        }
        assert_eq!(lead_facilitator("C7.EHEA"), Some("WHO"));
        assert_eq!(
            reference().annual_output_sections,
            ["achievements", "challenges", "recommendations"]
        );
    }
}
