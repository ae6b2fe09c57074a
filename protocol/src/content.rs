//! The content-document schema: the one place that knows what is inside an output draft, a national report and a
//! meeting record — the keys, the sections each may have, how a document's structure is created, how an activity,
//! a minute or a section's text is written, and how the report reads them back from a document's canonical JSON
//! export. The node's API writes documents with it and [`crate::report`] reads them with it, so the two cannot
//! drift apart. Pure: Automerge transactions in, JSON values out, no I/O.
//!
//! ```text
//! output draft     { "sections": { <output section>: Text, … }, "activities": [ string, … ] }
//! national report  { "sections": { <national-report section>: Text, … } }
//! meeting record   { "minutes": [ { "by": "org_…", "text": string }, … ] }
//! ```
//!
//! Sections are Automerge `Text`, edited with [`Transactable::update_text`] (a diff against the current text), so
//! two members editing the same section concurrently both keep their words. The structure (the `sections` map
//! with one empty `Text` per section, the `activities` and `minutes` lists) is made once, by the document's creator,
//! in its first change ([`create_skeleton`]): co-authors only ever write inside it, so concurrent writers never
//! make rival containers (Automerge would keep only one of them).
//!
//! The output sections are the reference data's annual-output sections (achievements, challenges,
//! recommendations); an output draft may also have the sections the year's adopted procedure requires. The readers
//! are lenient: what a document holds is shown as it is (a national report from another tool may have other
//! section names); only writes are held to the schema.

use crate::gov::{DocumentScope, Governance};
use crate::ids::OrgId;
use crate::op::DocKind;
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjId, ObjType, ReadDoc, Value as AmValue, ROOT};
use serde_json::Value;

/// The map of a document's sections (output drafts, national reports).
pub const SECTIONS: &str = "sections";
/// The list of an output draft's activities.
pub const ACTIVITIES: &str = "activities";
/// The list of a meeting record's minutes.
pub const MINUTES: &str = "minutes";
/// Who wrote a minute (an `OrgId` as text).
pub const MINUTE_BY: &str = "by";
/// What a minute says.
pub const MINUTE_TEXT: &str = "text";

/// Sections a national report has. Not in the reference data (which describes the action-line teams' outputs): a
/// summary, then the same three headings as the annual outputs, so national and team reports read alike.
pub const NATIONAL_REPORT_SECTIONS: [&str; 4] =
    ["summary", "achievements", "challenges", "recommendations"];

/// Sections every output draft has: the reference data's annual-output sections (a constant for callers that
/// need one, such as the CLI's default for a procedure's required sections; a unit test holds it equal to the
/// reference data).
pub const OUTPUT_SECTIONS: [&str; 3] = ["achievements", "challenges", "recommendations"];

/// What kind of content a document holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Schema {
    /// A team's output: the output sections (and those `required` by the year's procedure), and activities.
    OutputDraft {
        required: Vec<String>,
    },
    NationalReport,
    MeetingRecord,
    /// A team's charter: no content the API writes yet.
    TeamCharter,
}

impl Schema {
    /// The schema of a created document of `kind`, with the sections `gov`'s adopted procedure for its year
    /// requires.
    pub fn of_kind(gov: &Governance, kind: &DocKind) -> Schema {
        match kind {
            DocKind::OutputDraft { year, .. } => Schema::OutputDraft {
                required: gov
                    .procedure(*year)
                    .map(|(_, p, _)| p.required_sections)
                    .unwrap_or_default(),
            },
            DocKind::NationalReport { .. } => Schema::NationalReport,
            DocKind::TeamCharter { .. } => Schema::TeamCharter,
        }
    }

    /// The schema of a document of `scope`.
    pub fn of_scope(gov: &Governance, scope: &DocumentScope) -> Schema {
        match scope {
            DocumentScope::MeetingRecord { .. } => Schema::MeetingRecord,
            DocumentScope::Created(kind) => Schema::of_kind(gov, kind),
        }
    }

    /// The sections a document of this schema may have, in display order.
    pub fn sections(&self) -> Vec<String> {
        match self {
            Schema::OutputDraft { required } => {
                let mut v: Vec<String> = OUTPUT_SECTIONS.map(String::from).to_vec();
                for r in required {
                    if !v.contains(r) {
                        v.push(r.clone());
                    }
                }
                v
            }
            Schema::NationalReport => NATIONAL_REPORT_SECTIONS.map(String::from).to_vec(),
            Schema::MeetingRecord | Schema::TeamCharter => Vec::new(),
        }
    }

    pub fn has_activities(&self) -> bool {
        matches!(self, Schema::OutputDraft { .. })
    }

    pub fn has_minutes(&self) -> bool {
        matches!(self, Schema::MeetingRecord)
    }

    /// `section` if this schema has it, or the error naming the sections it has.
    pub fn check_section(&self, section: &str) -> Result<(), ContentError> {
        let allowed = self.sections();
        if allowed.iter().any(|s| s == section) {
            Ok(())
        } else {
            Err(ContentError::UnknownSection {
                section: section.to_string(),
                allowed,
            })
        }
    }
}

/// Why a content write was refused. Every variant except [`ContentError::Automerge`] is returned before anything
/// is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContentError {
    #[error("{}", unknown_section(section, allowed))]
    UnknownSection {
        section: String,
        allowed: Vec<String>,
    },
    /// The document has no such container (e.g. an output draft has activities, a national report does not).
    #[error("this document has no {0}")]
    NoContainer(&'static str),
    /// The container the creator makes is not in this replica yet: the creator's first change has not arrived.
    #[error("the document's structure ({0}) has not reached this node yet; try again in a moment")]
    NotSynced(&'static str),
    #[error("automerge refused the edit: {0}")]
    Automerge(#[from] AutomergeError),
}

fn unknown_section(section: &str, allowed: &[String]) -> String {
    if allowed.is_empty() {
        format!("`{section}` is not a section: this document has no sections")
    } else {
        format!(
            "`{section}` is not a section of this document; its sections are: {}",
            allowed.join(", ")
        )
    }
}

/// Makes a new document's structure (see the module documentation). Run once, by the creator, in the document's
/// first change.
pub fn create_skeleton(tx: &mut impl Transactable, schema: &Schema) -> Result<(), AutomergeError> {
    let sections = schema.sections();
    if !sections.is_empty() {
        let map = tx.put_object(ROOT, SECTIONS, ObjType::Map)?;
        for s in &sections {
            tx.put_object(&map, s.as_str(), ObjType::Text)?;
        }
    }
    if schema.has_activities() {
        tx.put_object(ROOT, ACTIVITIES, ObjType::List)?;
    }
    if schema.has_minutes() {
        tx.put_object(ROOT, MINUTES, ObjType::List)?;
    }
    Ok(())
}

/// The object at `key` of the root, if it is of type `ty`.
fn root_object(doc: &impl ReadDoc, key: &str, ty: ObjType) -> Option<ObjId> {
    match doc.get(ROOT, key).ok().flatten() {
        Some((AmValue::Object(t), id)) if t == ty => Some(id),
        _ => None,
    }
}

/// The `Text` of `section`, checked against the schema; made if the section map lacks it (a section the
/// procedure requires that the creator did not know).
fn section_text_obj(
    tx: &mut impl Transactable,
    schema: &Schema,
    section: &str,
) -> Result<ObjId, ContentError> {
    schema.check_section(section)?;
    let map = root_object(tx, SECTIONS, ObjType::Map).ok_or(ContentError::NotSynced(SECTIONS))?;
    Ok(match tx.get(&map, section)? {
        Some((AmValue::Object(ObjType::Text), id)) => id,
        _ => tx.put_object(&map, section, ObjType::Text)?,
    })
}

/// Sets `section` to `text`, as a diff against its current text ([`Transactable::update_text`]): concurrent edits
/// of other parts of the section merge.
pub fn set_section(
    tx: &mut impl Transactable,
    schema: &Schema,
    section: &str,
    text: &str,
) -> Result<(), ContentError> {
    let obj = section_text_obj(tx, schema, section)?;
    tx.update_text(&obj, text)?;
    Ok(())
}

/// Appends `text` to `section` as a new paragraph (after a line break unless the section is empty).
pub fn append_to_section(
    tx: &mut impl Transactable,
    schema: &Schema,
    section: &str,
    text: &str,
) -> Result<(), ContentError> {
    let obj = section_text_obj(tx, schema, section)?;
    let len = tx.length(&obj);
    let text = if len > 0 {
        format!("\n{text}")
    } else {
        text.to_string()
    };
    tx.splice_text(&obj, len, 0, &text)?;
    Ok(())
}

/// Appends an activity to an output draft.
pub fn append_activity(
    tx: &mut impl Transactable,
    schema: &Schema,
    text: &str,
) -> Result<(), ContentError> {
    if !schema.has_activities() {
        return Err(ContentError::NoContainer("activities list"));
    }
    let list =
        root_object(tx, ACTIVITIES, ObjType::List).ok_or(ContentError::NotSynced(ACTIVITIES))?;
    let at = tx.length(&list);
    tx.insert(&list, at, text)?;
    Ok(())
}

/// Appends a minute by `by` to a meeting record.
pub fn append_minute(
    tx: &mut impl Transactable,
    schema: &Schema,
    by: &OrgId,
    text: &str,
) -> Result<(), ContentError> {
    if !schema.has_minutes() {
        return Err(ContentError::NoContainer("minutes"));
    }
    let list = root_object(tx, MINUTES, ObjType::List).ok_or(ContentError::NotSynced(MINUTES))?;
    let at = tx.length(&list);
    let entry = tx.insert_object(&list, at, ObjType::Map)?;
    tx.put(&entry, MINUTE_BY, by.to_string())?;
    tx.put(&entry, MINUTE_TEXT, text)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// Readers, over a document's canonical JSON export (what the verifier and the report have). Anything unexpected
// reads as missing, never a panic.

/// Text of a value that should be text (Automerge text and strings export as JSON strings; a list of strings —
/// another tool's paragraphs — reads as lines).
pub fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        other => Some(other.to_string()),
    }
}

/// Every section a document holds, by name, in the export's (sorted) order.
pub fn sections(doc: &Value) -> Option<&serde_json::Map<String, Value>> {
    doc.get(SECTIONS).and_then(Value::as_object)
}

/// The text of one section, `None` if the document does not have it.
pub fn section(doc: &Value, name: &str) -> Option<String> {
    text_of(doc.get(SECTIONS).and_then(|s| s.get(name)))
}

/// An output draft's activities.
pub fn activities(doc: &Value) -> Option<Vec<String>> {
    doc.get(ACTIVITIES).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .map(|i| text_of(Some(i)).unwrap_or_default())
            .collect()
    })
}

/// One minute of a meeting record; either field may be unreadable in a document from another tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minute {
    pub by: Option<OrgId>,
    pub text: Option<String>,
}

/// A meeting record's minutes.
pub fn minutes(doc: &Value) -> Option<Vec<Minute>> {
    doc.get(MINUTES).and_then(Value::as_array).map(|items| {
        items
            .iter()
            .map(|i| Minute {
                by: i
                    .get(MINUTE_BY)
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<OrgId>().ok()),
                text: text_of(i.get(MINUTE_TEXT)),
            })
            .collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test documents are built here; a failure is a test failure.
mod tests {
    use super::*;
    use crate::export::canonical_json;
    use crate::reference::reference;
    use automerge::AutoCommit;

    fn export(d: &AutoCommit) -> Value {
        serde_json::from_slice(&canonical_json(d).unwrap()).unwrap()
    }

    fn output() -> Schema {
        Schema::OutputDraft {
            required: vec!["lessons".into()],
        }
    }

    #[test]
    fn output_sections_are_the_reference_datas() {
        assert_eq!(
            OUTPUT_SECTIONS.as_slice(),
            reference().annual_output_sections.as_slice()
        );
        assert_eq!(
            output().sections(),
            ["achievements", "challenges", "recommendations", "lessons"]
        );
    }

    /// Create → set / append / add an activity → read back with the readers the report uses.
    #[test]
    fn a_document_written_with_the_schema_reads_back_with_the_reports_readers() {
        let schema = output();
        let mut d = AutoCommit::new();
        create_skeleton(&mut d, &schema).unwrap();
        let skeleton = export(&d);
        assert_eq!(section(&skeleton, "achievements").as_deref(), Some(""));
        assert_eq!(activities(&skeleton), Some(vec![]));
        set_section(&mut d, &schema, "achievements", "Broadband in 40 villages.").unwrap();
        append_to_section(&mut d, &schema, "achievements", "Two IXPs.").unwrap();
        set_section(&mut d, &schema, "lessons", "Ask early.").unwrap();
        append_activity(&mut d, &schema, "Workshop, Nairobi").unwrap();
        let json = export(&d);
        assert_eq!(
            section(&json, "achievements").as_deref(),
            Some("Broadband in 40 villages.\nTwo IXPs.")
        );
        assert_eq!(section(&json, "lessons").as_deref(), Some("Ask early."));
        assert_eq!(section(&json, "challenges").as_deref(), Some(""));
        assert_eq!(
            activities(&json),
            Some(vec!["Workshop, Nairobi".to_string()])
        );
        assert_eq!(sections(&json).unwrap().len(), 4);

        let mut r = AutoCommit::new();
        create_skeleton(&mut r, &Schema::MeetingRecord).unwrap();
        let by = OrgId([7; 32]);
        append_minute(&mut r, &Schema::MeetingRecord, &by, "Agenda adopted.").unwrap();
        assert_eq!(
            minutes(&export(&r)),
            Some(vec![Minute {
                by: Some(by),
                text: Some("Agenda adopted.".into())
            }])
        );
    }

    #[test]
    fn an_unknown_section_is_refused_naming_the_allowed_ones_and_nothing_is_written() {
        let mut d = AutoCommit::new();
        create_skeleton(&mut d, &Schema::NationalReport).unwrap();
        let before = export(&d);
        let err = set_section(&mut d, &Schema::NationalReport, "lessons", "x").unwrap_err();
        assert!(matches!(err, ContentError::UnknownSection { .. }));
        assert_eq!(
            err.to_string(),
            "`lessons` is not a section of this document; its sections are: summary, achievements, \
             challenges, recommendations"
        );
        assert!(matches!(
            append_activity(&mut d, &Schema::NationalReport, "x"),
            Err(ContentError::NoContainer(_))
        ));
        assert_eq!(export(&d), before);
        // A document whose creator's first change has not arrived: not synced, nothing written.
        let mut empty = AutoCommit::new();
        assert!(matches!(
            set_section(&mut empty, &output(), "challenges", "x"),
            Err(ContentError::NotSynced(SECTIONS))
        ));
        assert_eq!(export(&empty), serde_json::json!({}));
    }

    /// Sections are Text set by a diff: two authors rewriting different parts of one section concurrently both
    /// keep their words after merging.
    #[test]
    fn concurrent_edits_of_one_section_both_keep_their_text() {
        let schema = output();
        let mut a = AutoCommit::new();
        create_skeleton(&mut a, &schema).unwrap();
        set_section(&mut a, &schema, "challenges", "Cost. Skills.").unwrap();
        let mut b = a.fork();
        set_section(&mut a, &schema, "challenges", "High cost. Skills.").unwrap();
        set_section(&mut b, &schema, "challenges", "Cost. Digital skills.").unwrap();
        a.merge(&mut b).unwrap();
        assert_eq!(
            section(&export(&a), "challenges").as_deref(),
            Some("High cost. Digital skills.")
        );
    }
}
