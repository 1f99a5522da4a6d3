//! `AudienceService`: queries answered from memory, under a brief read lock.

use tonic::{Request, Response, Status};

use super::{timestamp, Context};
use crate::audience::holdout::share_text;
use crate::audience::Audience;
use crate::ledger::facts::Consent;
use crate::ledger::profile::{Lww, Profile};
use crate::ledger::state::CustomerIdx;
use crate::proto::v1::{self, audience_service_server::AudienceService};
use crate::writer::Reader;

/// Default and largest page for `StreamMembers`.
const DEFAULT_PAGE: u32 = 1_000;
const MAX_PAGE: u32 = 10_000;
/// Default and largest sample count for `GetAudienceSizeHistory`.
const DEFAULT_POINTS: u32 = 1_000;
const MAX_POINTS: u32 = 10_000;

/// The audience query service.
pub struct AudienceApi {
    ctx: Context,
}

impl AudienceApi {
    /// A service over the shared context.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }
}

fn consent_view(c: Consent) -> i32 {
    match c {
        Consent::Unspecified => v1::ConsentStatusView::Unspecified as i32,
        Consent::Granted => v1::ConsentStatusView::Granted as i32,
        Consent::Denied => v1::ConsentStatusView::Denied as i32,
    }
}

fn audience_named(db: &Reader<'_>, name: &str) -> Result<Audience, Status> {
    db.audiences()
        .by_name(name)
        .ok_or_else(|| Status::not_found(format!("audience `{name}` not found")))
}

fn customer_named(db: &Reader<'_>, id: &str) -> Result<CustomerIdx, Status> {
    db.customer(id)
        .map(|(c, _)| c)
        .ok_or_else(|| no_customer(id))
}

/// NOT_FOUND for a customer id the daemon has never seen.
fn no_customer(id: &str) -> Status {
    Status::not_found(format!("customer `{id}` not found"))
}

/// Nanoseconds of a request's timestamp field; INVALID_ARGUMENT naming it when out of range.
fn nanos_of(field: &str, t: &prost_types::Timestamp) -> Result<crate::clock::Nanos, Status> {
    t.seconds
        .checked_mul(crate::clock::NANOS_PER_SEC)
        .and_then(|s| s.checked_add(i64::from(t.nanos)))
        .ok_or_else(|| Status::invalid_argument(format!("{field}: out of range")))
}

/// An audience as `ListAudiences` reports it (the status page shows the same).
pub fn describe(db: &Reader<'_>, a: Audience) -> v1::Audience {
    let members = db.audiences().members(a);
    v1::Audience {
        name: db.audiences().name(a),
        definition: db.audiences().definition(a),
        size: members.len(),
        eligible_size: members.intersection_len(db.audiences().eligible()),
        last_changed_at: db.audiences().last_changed(a).map(timestamp),
        holdout_size: db.audiences().holdout(a).len(),
        holdout_fraction: share_text(db.audiences().holdout_policy().share(a)),
    }
}

#[tonic::async_trait]
impl AudienceService for AudienceApi {
    async fn list_audiences(
        &self,
        _: Request<v1::ListAudiencesRequest>,
    ) -> Result<Response<v1::ListAudiencesResponse>, Status> {
        let db = self.ctx.writer.read();
        let audiences = Audience::ALL.iter().map(|a| describe(&db, *a)).collect();
        Ok(Response::new(v1::ListAudiencesResponse { audiences }))
    }

    async fn get_audience(
        &self,
        request: Request<v1::GetAudienceRequest>,
    ) -> Result<Response<v1::Audience>, Status> {
        let name = request.into_inner().name;
        let db = self.ctx.writer.read();
        let a = audience_named(&db, &name)?;
        Ok(Response::new(describe(&db, a)))
    }

    async fn get_customer_audiences(
        &self,
        request: Request<v1::GetCustomerAudiencesRequest>,
    ) -> Result<Response<v1::CustomerAudiences>, Status> {
        let id = request.into_inner().customer_id;
        // The published answers: this hot-path query never waits for the writer.
        let published = self.ctx.writer.answers();
        let answer = published.get(&id).ok_or_else(|| no_customer(&id))?;
        let names = published.names();
        let name = |a: Audience| names.get(a.index()).cloned().unwrap_or_default();
        let mut audiences = Vec::new();
        let mut holdout = Vec::new();
        let mut stage = String::new();
        for a in Audience::ALL {
            if answer.mask & a.bit() != 0 {
                audiences.push(name(a));
                if answer.holdout & a.bit() != 0 {
                    holdout.push(name(a));
                }
                if let Some(s) = a.stage_name() {
                    stage = s.to_string();
                }
            }
        }
        Ok(Response::new(v1::CustomerAudiences {
            customer_id: id,
            audiences,
            lifecycle_stage: stage,
            eligible: answer.eligible,
            holdout,
        }))
    }

    type StreamMembersStream =
        tokio_stream::wrappers::ReceiverStream<Result<v1::MembersPage, Status>>;

    async fn stream_members(
        &self,
        request: Request<v1::StreamMembersRequest>,
    ) -> Result<Response<Self::StreamMembersStream>, Status> {
        let req = request.into_inner();
        let page = match req.page_size {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Status::invalid_argument(format!(
                    "page_size: at most {MAX_PAGE}"
                )))
            }
            n => n,
        } as usize;
        let (audience, mut next) = {
            let db = self.ctx.writer.read();
            let a = audience_named(&db, &req.audience)?;
            let start = if req.after_customer_id.is_empty() {
                0
            } else {
                customer_named(&db, &req.after_customer_id)? + 1
            };
            (a, start)
        };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let writer = self.ctx.writer.clone();
        let eligible_only = req.eligible_only;
        tokio::spawn(async move {
            loop {
                // One page per read lock, so a long listing never stalls the writer.
                let (members, last) = {
                    let db = writer.read();
                    let set = db.audiences().members(audience);
                    let mut members = Vec::with_capacity(page);
                    let mut last = None;
                    for c in set.range(next..) {
                        last = Some(c);
                        let eligible = db.audiences().is_eligible(c);
                        if eligible_only && !eligible {
                            continue;
                        }
                        members.push(v1::Member {
                            customer_id: db.customer_id(c).to_string(),
                            eligible,
                            since: db.audiences().since(c, audience).map(timestamp),
                            holdout: db.audiences().holdout(audience).contains(c),
                        });
                        if members.len() == page {
                            break;
                        }
                    }
                    let more = last.is_some_and(|l| set.range(l + 1..).next().is_some());
                    let cursor = match (more, last) {
                        (true, Some(l)) => db.customer_id(l).to_string(),
                        _ => String::new(),
                    };
                    (
                        v1::MembersPage {
                            members,
                            next_after_customer_id: cursor,
                        },
                        last.filter(|_| more),
                    )
                };
                if tx.send(Ok(members)).await.is_err() {
                    return;
                }
                match last {
                    Some(l) => next = l + 1,
                    None => return,
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn get_customer_history(
        &self,
        request: Request<v1::GetCustomerHistoryRequest>,
    ) -> Result<Response<v1::CustomerHistory>, Status> {
        let id = request.into_inner().customer_id;
        let db = self.ctx.writer.read();
        let c = customer_named(&db, &id)?;
        let changes = db
            .audiences()
            .history(c)
            .iter()
            .filter_map(|&(n, added, at)| {
                let a = *Audience::ALL.get(n as usize)?;
                Some(v1::MembershipChange {
                    audience: db.audiences().name(a),
                    added,
                    at: Some(timestamp(at)),
                })
            })
            .collect();
        Ok(Response::new(v1::CustomerHistory {
            customer_id: id,
            changes,
        }))
    }

    async fn get_audience_size_history(
        &self,
        request: Request<v1::GetAudienceSizeHistoryRequest>,
    ) -> Result<Response<v1::AudienceSizeHistory>, Status> {
        let req = request.into_inner();
        let max_points = match req.max_points {
            0 => DEFAULT_POINTS,
            n if n > MAX_POINTS => {
                return Err(Status::invalid_argument(format!(
                    "max_points: at most {MAX_POINTS}"
                )))
            }
            n => n,
        };
        let since = match &req.since {
            Some(t) => nanos_of("since", t)?,
            None => i64::MIN,
        };
        let until = match &req.until {
            Some(t) => nanos_of("until", t)?,
            None => i64::MAX,
        };
        let wanted: Vec<(usize, String)> = {
            let db = self.ctx.writer.read();
            if req.audiences.is_empty() {
                Audience::ALL
                    .iter()
                    .map(|a| (a.index(), db.audiences().name(*a)))
                    .collect()
            } else {
                req.audiences
                    .iter()
                    .map(|name| Ok((audience_named(&db, name)?.index(), name.clone())))
                    .collect::<Result<_, Status>>()?
            }
        };
        let history = self.ctx.writer.size_history();
        let samples = history
            .range(since, until, max_points as usize)
            .into_iter()
            .map(|s| v1::AudienceSizeSample {
                at: Some(timestamp(s.at)),
                sizes: wanted
                    .iter()
                    .filter_map(|(i, name)| {
                        s.sizes.get(*i).map(|z| v1::AudienceSizePoint {
                            audience: name.clone(),
                            size: z.size,
                            eligible_size: z.eligible,
                        })
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(v1::AudienceSizeHistory {
            interval_seconds: u32::try_from(history.interval().as_secs()).unwrap_or(u32::MAX),
            samples,
        }))
    }

    async fn get_customer(
        &self,
        request: Request<v1::GetCustomerRequest>,
    ) -> Result<Response<v1::CustomerFacts>, Status> {
        let id = request.into_inner().customer_id;
        let now = self.ctx.clock.now();
        let db = self.ctx.writer.read();
        let (idx, c) = db.customer(&id).ok_or_else(|| no_customer(&id))?;
        let settings = self.ctx.settings();
        let s = db.summary(idx, now, settings.window_secs, &settings.currencies);
        let p = &c.profile;
        fn has<T>(slot: &Option<Lww<Option<T>>>) -> bool {
            slot.as_ref().is_some_and(|l| l.value.is_some())
        }
        let facts = v1::CustomerFacts {
            customer_id: c.id.to_string(),
            has_email: has(&p.email),
            has_phone: has(&p.phone),
            has_first_name: has(&p.first_name),
            has_last_name: has(&p.last_name),
            country: p
                .country
                .as_ref()
                .and_then(|l| l.value.as_deref())
                .unwrap_or_default()
                .to_string(),
            has_postal_code: has(&p.postal_code),
            registered_at: p.registered_at.as_ref().map(|l| timestamp(l.value)),
            ad_user_data: consent_view(Profile::consent(&p.ad_user_data)),
            ad_personalization: consent_view(Profile::consent(&p.ad_personalization)),
            order_count: s.order_count,
            first_order_at: s.first_order_at.map(timestamp),
            last_order_at: s.last_order_at.map(timestamp),
            revenue_minor: s.revenue_minor,
            revenue_in_window_minor: s.revenue_in_window_minor,
            revenue_currency: settings.currencies.revenue_currency().as_str().to_string(),
            open_carts: s.open_carts,
            erased_at: c.erased_at.map(timestamp),
        };
        Ok(Response::new(facts))
    }
}
