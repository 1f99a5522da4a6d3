//! A small deterministic shop for the crash, fault and bad-input suites: every kind of event
//! (upserts, orders, partial and full refunds, carts, checkouts, consent withdrawals,
//! erasures), shuffled and cut into batches, plus what the ad networks must end up holding.
//!
//! Times are whole days (and whole half days at most for derived instants) before one `now`
//! fixed by the caller, so two daemons evaluating the same events seconds apart agree on every
//! membership.

use std::collections::{BTreeMap, BTreeSet};

use audiencesync::hashing::hex_lower;
use audiencesync::ingest::identity::Normalizer;
use audiencesync::proto::v1;
use audiencesync::sync::dest::meta;
use audiencesync::sync::member::RemoteMember;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;

/// One test person's clear identifiers (only the test knows them; the daemon hashes them).
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub phone: String,
}

/// A customer upsert with a name and postal code of its own: Google matches removals on any
/// shared identifier, so two test people must never share an address.
pub fn person(id: &str, email: &str, phone: &str, granted: bool) -> v1::event::Kind {
    let (first, last, zip) = (format!("Given{id}"), format!("Family{id}"), postal(id));
    customer_named(id, email, phone, granted, (&first, &last, &zip))
}

/// The postal code `person` gives `id`.
pub fn postal(id: &str) -> String {
    format!("9{:04}", id.bytes().map(u32::from).sum::<u32>() % 10_000)
}

/// The member a network must hold for a customer made by `person`.
pub fn member(id: &str, email: &str, phone: &str) -> RemoteMember {
    let n = Normalizer::new("US").expect("normalizer");
    RemoteMember {
        email: Some(n.email(email).expect("email")),
        phone: Some(n.phone(phone, Some("US")).expect("phone")),
        first_name: Some(n.first_name(&format!("Given{id}")).expect("fn")),
        last_name: Some(n.last_name(&format!("Family{id}")).expect("ln")),
        country: Some("US".into()),
        postal_code: Some(postal(id).into()),
    }
}

/// The Google fake's canonical form of a member: identifiers sorted and joined.
pub fn google_form(m: &RemoteMember) -> String {
    let mut ids = [
        format!("email:{}", hex_lower(&m.email.expect("e").google)),
        format!("phone:{}", hex_lower(&m.phone.expect("p").google)),
        format!(
            "address:{},{},US,{}",
            hex_lower(&m.first_name.expect("f").google),
            hex_lower(&m.last_name.expect("l").google),
            m.postal_code.as_deref().unwrap_or_default()
        ),
    ];
    ids.sort();
    ids.join("|")
}

/// The Meta fake's form of a member: its row joined with `|`.
pub fn meta_form(m: &RemoteMember) -> String {
    meta::shape::row(m).join("|")
}

/// The events of a shop of `customers` people, shuffled by `seed`, in batches of `batch`.
pub struct Shop {
    pub people: Vec<Person>,
    pub batches: Vec<Vec<v1::Event>>,
}

impl Shop {
    pub fn new(customers: usize, seed: u64, now: i64, batch: usize) -> Self {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut events = Vec::new();
        let mut people = Vec::new();
        let day = |d: i64| now - d * DAY;
        for i in 0..customers {
            let id = format!("c{i:03}");
            let p = Person {
                id: id.clone(),
                email: format!("Shopper.{i}@Example.com"),
                phone: format!("+1212555{:04}", 1000 + i),
            };
            let granted = i % 7 != 3;
            events.push(ev(
                &format!("u-{id}"),
                day(500 + i as i64),
                person(&id, &p.email, &p.phone, granted),
            ));
            let orders = i % 4;
            for o in 0..orders {
                let oid = format!("o-{id}-{o}");
                let cents = 1_000 * (1 + (i as i64 * 7 + o as i64) % 13);
                events.push(ev(
                    &oid,
                    day(rng.random_range(1..420)),
                    order(&oid, &id, cents, "USD"),
                ));
                if (i + o) % 5 == 0 {
                    events.push(ev(
                        &format!("r-{oid}"),
                        day(0) - DAY / 2,
                        refund(&oid, 500, false),
                    ));
                }
                if (i + o) % 11 == 0 {
                    events.push(ev(
                        &format!("rf-{oid}"),
                        day(0) - DAY / 2,
                        refund(&oid, 0, true),
                    ));
                }
            }
            if i % 3 == 0 {
                let cid = format!("k-{id}");
                events.push(ev(
                    &format!("cu-{id}"),
                    day(rng.random_range(1..10)),
                    cart(&cid, &id, 1 + (i % 3) as u32),
                ));
                if i % 6 == 0 {
                    events.push(ev(
                        &format!("co-{id}"),
                        day(0) - DAY / 3,
                        checkout(&cid, ""),
                    ));
                }
            }
            if i % 8 == 5 {
                events.push(ev(&format!("cc-{id}"), day(2), consent(&id, false)));
            }
            if i % 13 == 12 {
                events.push(ev(&format!("x-{id}"), day(3), erase(&id)));
            }
            people.push(p);
        }
        events.shuffle(&mut rng);
        let batches = events.chunks(batch.max(1)).map(<[_]>::to_vec).collect();
        Self { people, batches }
    }

    pub fn ids(&self) -> Vec<String> {
        self.people.iter().map(|p| p.id.clone()).collect()
    }

    pub fn events(&self) -> usize {
        self.batches.iter().map(Vec::len).sum()
    }

    /// The forms a network must hold for `members` (customer ids).
    pub fn expected(
        &self,
        members: &BTreeSet<String>,
        form: fn(&RemoteMember) -> String,
    ) -> BTreeSet<String> {
        self.people
            .iter()
            .filter(|p| members.contains(&p.id))
            .map(|p| form(&member(&p.id, &p.email, &p.phone)))
            .collect()
    }
}

/// Sends each batch with `IngestBatch` and returns the acks (panics on an RPC error).
pub async fn ingest_all(d: &Daemon, batches: &[Vec<v1::Event>]) -> Vec<v1::BatchAck> {
    let mut client = d.ingest().await;
    let mut acks = Vec::new();
    for (i, events) in batches.iter().enumerate() {
        acks.push(
            client
                .ingest_batch(v1::EventBatch {
                    batch_id: i as u64,
                    events: events.clone(),
                })
                .await
                .expect("ingest_batch")
                .into_inner(),
        );
    }
    acks
}

/// Everything observable about customers and audiences that must not depend on when or how
/// often events arrived: facts per customer, audience names + stage + eligibility per
/// customer, eligible members per audience, and the store's entity counts.
#[derive(Debug, PartialEq, Eq)]
pub struct Observed {
    pub facts: Vec<v1::CustomerFacts>,
    pub audiences: BTreeMap<String, (Vec<String>, String, bool)>,
    pub eligible_members: BTreeMap<String, BTreeSet<String>>,
    pub counts: (u64, u64, u64),
}

pub async fn observe(d: &Daemon, ids: &[String]) -> Observed {
    let facts = facts_of(d, ids).await;
    let mut aud = d.audience().await;
    let mut audiences = BTreeMap::new();
    for id in ids {
        match aud
            .get_customer_audiences(v1::GetCustomerAudiencesRequest {
                customer_id: id.clone(),
            })
            .await
        {
            Ok(r) => {
                let r = r.into_inner();
                let mut names = r.audiences;
                names.sort();
                audiences.insert(id.clone(), (names, r.lifecycle_stage, r.eligible));
            }
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => panic!("get_customer_audiences {id}: {s}"),
        }
    }
    let list = aud
        .list_audiences(v1::ListAudiencesRequest {})
        .await
        .expect("list_audiences")
        .into_inner();
    let mut eligible_members = BTreeMap::new();
    for a in list.audiences {
        eligible_members.insert(a.name.clone(), members(d, &a.name, true).await);
    }
    let s = stats(d).await;
    Observed {
        facts,
        audiences,
        eligible_members,
        counts: (s.customers, s.orders, s.carts),
    }
}

/// Members of an audience (all pages).
pub async fn members(d: &Daemon, audience: &str, eligible_only: bool) -> BTreeSet<String> {
    let mut aud = d.audience().await;
    let mut out = BTreeSet::new();
    let mut after = String::new();
    loop {
        let mut pages = aud
            .stream_members(v1::StreamMembersRequest {
                audience: audience.into(),
                page_size: 1_000,
                eligible_only,
                after_customer_id: after.clone(),
            })
            .await
            .expect("stream_members")
            .into_inner();
        let mut next = String::new();
        while let Some(page) = pages.message().await.expect("page") {
            out.extend(page.members.into_iter().map(|m| m.customer_id));
            next = page.next_after_customer_id;
        }
        if next.is_empty() {
            return out;
        }
        after = next;
    }
}
