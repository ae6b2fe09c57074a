//! `wsis status`, `wsis op show` and `wsis org`: what this node is and holds, one governance op, the
//! organisations and their admission.

use super::{print_done, rows_of, s, url_part, yes_no};
use crate::client::Client;
use crate::output::{print_json, print_table};
use crate::{Failure, OrgCmd};
use serde_json::Value;
use wsis_node::api::types::{AdmitRequest, OpDone, OpInfo, QuotaRow, Status};

/// `wsis status`.
pub(super) fn status(client: Client, json: bool) -> Result<(), Failure> {
    let s: Status = client.get("/v1/status")?;
    if json {
        return print_json(&s);
    }
    println!("organisation  {} ({})", s.name, s.org);
    println!(
        "stakeholder   {}{}",
        s.stakeholder,
        s.country.map(|c| format!(", {c}")).unwrap_or_default()
    );
    println!("federation    {} ({})", s.federation_name, s.federation);
    println!(
        "admitted      {}{}",
        yes_no(s.admitted),
        if s.secretariat { " (secretariat)" } else { "" }
    );
    println!("peer id       {}", s.peer_id);
    for a in &s.listen {
        println!("listening     {a}");
    }
    println!("peers         {} connected", s.connected_peers);
    println!(
        "governance    {} ops ({} invalid, {} waiting for parents), digest {}",
        s.ops,
        s.ops_invalid,
        s.ops_parked,
        &s.gov_digest[..16]
    );
    if s.admission_requests > 0 {
        println!(
            "admission     {} organisations ask to be admitted ({} ops waiting); `wsis org list` names them",
            s.admission_requests, s.ops_pending
        );
    }
    println!(
        "documents     {}, digest {}",
        s.documents,
        &s.docs_digest[..16]
    );
    println!(
        "refused       {} ops, {} requests, {} envelopes; {} ops refused parking, {} parked ops evicted",
        s.ops_refused,
        s.requests_refused,
        s.envelopes_rejected.values().sum::<u64>(),
        s.ops_parking_refused,
        s.ops_evicted
    );
    println!("quota         {}", quota_line(&s.quotas.own));
    for r in &s.quotas.nearest {
        println!(
            "near limit    {} ({}) at {}.{}%: {}",
            r.name,
            r.org,
            r.fill_permille / 10,
            r.fill_permille % 10,
            quota_line(r)
        );
    }
    // Each document's use of the caps peers apply (an edit past one is refused before it is stored).
    for l in &s.limits {
        println!(
            "limits        {}: {} of {} ops ({} unpublished), {} of {} actors ({} of {} ours){}",
            l.doc,
            l.ops,
            l.max_ops,
            l.unpublished_ops,
            l.actors,
            l.max_actors,
            l.own_actors,
            l.max_own_actors,
            if l.excluded_authors > 0 {
                format!(
                    ", {} author(s) excluded for equivocating",
                    l.excluded_authors
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// One organisation's usage against its quotas, in MiB where it is bytes.
fn quota_line(r: &QuotaRow) -> String {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let doc = match &r.fullest_doc {
        Some(d) => format!(
            "fullest document {d}: {} of {}, {} of {} envelopes; ",
            mib(r.doc_bytes),
            mib(r.doc_bytes_quota),
            r.doc_envelopes,
            r.doc_envelopes_quota
        ),
        None => String::new(),
    };
    format!(
        "{} of {} stored; {doc}{} of {} documents created",
        mib(r.bytes),
        mib(r.bytes_quota),
        r.docs_created,
        r.docs_budget
    )
}

/// `wsis op show`.
pub(super) fn op_show(client: Client, op: &str, json: bool) -> Result<(), Failure> {
    let info: OpInfo = client.get(&format!("/v1/ops/{}", url_part(op)?))?;
    if json {
        return print_json(&info);
    }
    println!("op       {}", info.op);
    println!("kind     {}", info.kind);
    println!("author   {} (seq {})", info.author, info.seq);
    println!(
        "valid    {}",
        info.invalid
            .map_or_else(|| "yes".to_string(), |w| format!("no: {w}"))
    );
    Ok(())
}

/// `wsis org`.
pub(super) fn org(client: Client, cmd: OrgCmd, json: bool) -> Result<(), Failure> {
    match cmd {
        OrgCmd::Admit { org } => {
            let done: OpDone = client.post("/v1/orgs/admit", &AdmitRequest { org })?;
            print_done(&done, "admitted", json)
        }
        OrgCmd::List => {
            let v: Value = client.get("/v1/orgs")?;
            if json {
                return print_json(&v);
            }
            let rows = rows_of(&v, |o| {
                vec![
                    s(o, "name"),
                    s(o, "stakeholder"),
                    s(o, "country"),
                    if o["secretariat"] == true {
                        "secretariat".into()
                    } else if o["member"] == true {
                        "member".into()
                    } else {
                        "pending admission".into()
                    },
                    s(o, "id"),
                ]
            });
            print_table(&["NAME", "STAKEHOLDER", "COUNTRY", "STATUS", "ID"], rows);
            Ok(())
        }
    }
}
