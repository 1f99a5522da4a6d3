//! `AudienceService`: queries answered from memory.

use tonic::{Request, Response, Status};

use super::{timestamp, Context};
use crate::ledger::facts::Consent;
use crate::ledger::state::Profile;
use crate::proto::v1::{self, audience_service_server::AudienceService};

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

fn not_yet(rpc: &str) -> Status {
    Status::unimplemented(format!(
        "{rpc} is not implemented in this version of audiencesync (the audience engine is not built yet)"
    ))
}

fn consent_view(c: Consent) -> i32 {
    match c {
        Consent::Unspecified => v1::ConsentStatusView::Unspecified as i32,
        Consent::Granted => v1::ConsentStatusView::Granted as i32,
        Consent::Denied => v1::ConsentStatusView::Denied as i32,
    }
}

#[tonic::async_trait]
impl AudienceService for AudienceApi {
    async fn list_audiences(
        &self,
        _: Request<v1::ListAudiencesRequest>,
    ) -> Result<Response<v1::ListAudiencesResponse>, Status> {
        Err(not_yet("ListAudiences"))
    }

    async fn get_audience(
        &self,
        _: Request<v1::GetAudienceRequest>,
    ) -> Result<Response<v1::Audience>, Status> {
        Err(not_yet("GetAudience"))
    }

    async fn get_customer_audiences(
        &self,
        _: Request<v1::GetCustomerAudiencesRequest>,
    ) -> Result<Response<v1::CustomerAudiences>, Status> {
        Err(not_yet("GetCustomerAudiences"))
    }

    type StreamMembersStream = futures::stream::Empty<Result<v1::MembersPage, Status>>;

    async fn stream_members(
        &self,
        _: Request<v1::StreamMembersRequest>,
    ) -> Result<Response<Self::StreamMembersStream>, Status> {
        Err(not_yet("StreamMembers"))
    }

    async fn get_customer_history(
        &self,
        _: Request<v1::GetCustomerHistoryRequest>,
    ) -> Result<Response<v1::CustomerHistory>, Status> {
        Err(not_yet("GetCustomerHistory"))
    }

    async fn get_customer(
        &self,
        request: Request<v1::GetCustomerRequest>,
    ) -> Result<Response<v1::CustomerFacts>, Status> {
        let id = request.into_inner().customer_id;
        let now = self.ctx.clock.now();
        let state = self.ctx.ledger.state();
        let (idx, c) = state
            .customer(&id)
            .ok_or_else(|| Status::not_found(format!("customer `{id}` not found")))?;
        let s = state.summary(idx, now, self.ctx.window_secs, &self.ctx.currencies);
        let p = &c.profile;
        let has = |slot: &Option<crate::ledger::state::Lww<Option<_>>>| {
            slot.as_ref().is_some_and(|l| l.value.is_some())
        };
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
            has_postal_code: p.postal_code.as_ref().is_some_and(|l| l.value.is_some()),
            registered_at: p.registered_at.as_ref().map(|l| timestamp(l.value)),
            ad_user_data: consent_view(Profile::consent(&p.ad_user_data)),
            ad_personalization: consent_view(Profile::consent(&p.ad_personalization)),
            order_count: s.order_count,
            first_order_at: s.first_order_at.map(timestamp),
            last_order_at: s.last_order_at.map(timestamp),
            revenue_minor: s.revenue_minor,
            revenue_in_window_minor: s.revenue_in_window_minor,
            revenue_currency: self.ctx.currencies.revenue_currency().as_str().to_string(),
            open_carts: s.open_carts,
            erased_at: c.erased_at.map(timestamp),
        };
        Ok(Response::new(facts))
    }
}
