//! The organisations of a testnet, taken from the project's reference data (`protocol/data/wsis-reference.json`)
//! where it has them. Governments, the company and the university are illustrative participants (the reference
//! data lists facilitators, not every stakeholder); their names say so.

use wsis_protocol::op::{Country, StakeholderType};

/// One organisation in the testnet.
#[derive(Debug, Clone)]
pub struct OrgSpec {
    pub acronym: String,
    pub name: String,
    pub stakeholder: StakeholderType,
    pub country: Option<Country>,
    /// Named in the genesis as a secretariat organisation (ITU, UNESCO, UNDP: the reference data's secretariat).
    pub secretariat: bool,
}

impl OrgSpec {
    /// A file-system friendly name for its data directory.
    pub fn dir_name(&self) -> String {
        self.acronym
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    }
}

fn from_reference(acronym: &str) -> Option<OrgSpec> {
    let r = wsis_protocol::reference::reference();
    let o = r.organisations.iter().find(|o| o.acronym == acronym)?;
    Some(OrgSpec {
        acronym: o.acronym.clone(),
        name: o.name.clone(),
        stakeholder: o.stakeholder_type.parse().ok()?,
        country: None,
        secretariat: r.secretariat.iter().any(|s| s == acronym),
    })
}

fn other(
    acronym: &str,
    name: &str,
    stakeholder: StakeholderType,
    country: Option<&str>,
) -> OrgSpec {
    OrgSpec {
        acronym: acronym.into(),
        name: name.into(),
        stakeholder,
        country: country.and_then(|c| Country::new(c).ok()),
        secretariat: false,
    }
}

/// The demo's organisations, first the twelve of the README's demo, then more UN bodies from the reference data,
/// then illustrative participants of every stakeholder type, up to `n`.
pub fn demo(n: usize) -> Vec<OrgSpec> {
    // Ordered so that a small testnet still has two secretariat organisations, two governments (national
    // reports) and civil society: ITU, UNESCO, KE, BR, APC come first.
    let mut out: Vec<OrgSpec> = Vec::new();
    for a in [
        "ITU", "UNESCO", "KE", "BR", "APC", "UNDP", "UNDESA", "UNCTAD", "WHO", "FAO", "NETCO",
        "UNIV",
    ] {
        let spec = match a {
            "KE" => Some(other(
                "KE",
                "Government of Kenya",
                StakeholderType::Government,
                Some("KE"),
            )),
            "BR" => Some(other(
                "BR",
                "Government of Brazil",
                StakeholderType::Government,
                Some("BR"),
            )),
            "NETCO" => Some(other(
                "NETCO",
                "Example Networks Ltd (illustrative company)",
                StakeholderType::PrivateSector,
                None,
            )),
            "UNIV" => Some(other(
                "UNIV",
                "Example University (illustrative academia)",
                StakeholderType::Academia,
                None,
            )),
            _ => from_reference(a),
        };
        out.extend(spec);
    }
    for a in [
        "ILO", "WMO", "UNEP", "UPU", "ITC", "WTO", "UNIDO", "WIPO", "UNICEF",
    ] {
        out.extend(from_reference(a));
    }
    let kinds = [
        StakeholderType::Government,
        StakeholderType::CivilSociety,
        StakeholderType::PrivateSector,
        StakeholderType::Academia,
        StakeholderType::TechnicalCommunity,
    ];
    // Countries for the illustrative governments beyond the first two.
    let countries = [
        "GH", "IN", "DE", "CL", "ID", "SN", "PH", "MX", "EG", "FI", "JP", "NZ",
    ];
    let mut k = 0usize;
    while out.len() < n {
        let stakeholder = kinds[k % kinds.len()];
        let country = (stakeholder == StakeholderType::Government)
            .then(|| countries[(k / kinds.len()) % countries.len()]);
        k += 1;
        out.push(other(
            &format!("P{k:02}"),
            &format!("Participant {k} (illustrative {stakeholder})"),
            stakeholder,
            country,
        ));
    }
    out.truncate(n.max(1));
    out
}
