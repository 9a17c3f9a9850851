//! Invitations in the console: the admins' page (create one, see each with its uses, revoke),
//! and the page an invitation link opens, where the invitee chooses their email and password
//! and lands signed in (confined to enrollment when 2FA is enforced).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

use super::csrf::CsrfForm;
use super::error::{WebError, refusal_message};
use super::login::link_invalid;
use super::page::{PageContext, PageResult, flash_success, ok, render, see_other};
use super::session::SignedIn;
use crate::domain::{AccessLevel, Email, FlockId, NewPassword, Refusal};
use crate::service::invitations::{self, BadRequest, InvitationRequest, MAX_DAYS, MAX_USES};
use crate::service::{Principal, ServiceError, Who, flocks};
use crate::state::AppState;
use crate::store::Invitation;
use crate::timestamps;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/invitations", web::get().to(list))
        .route("/invitations", web::post().to(create))
        .route("/invitations/{id}/revoke", web::post().to(revoke))
        .route("/invite/{secret}", web::get().to(accept_form))
        .route("/invite/{secret}", web::post().to(accept));
}

struct InvitationRow {
    id: String,
    state: &'static str,
    grants: String,
    domain: String,
    uses: String,
    used_by: String,
    expires: String,
    created_by: String,
}

impl InvitationRow {
    fn of(invitation: &Invitation, names: &dyn Fn(&FlockId) -> String, now: u64) -> InvitationRow {
        let mut grants = vec![invitation.access_level.as_str().to_string()];
        grants.extend(
            invitation
                .managed_flocks
                .iter()
                .map(|f| format!("manager of {}", names(f))),
        );
        grants.extend(
            invitation
                .watched_flocks
                .iter()
                .map(|f| format!("watcher of {}", names(f))),
        );
        InvitationRow {
            id: invitation.id.clone(),
            state: invitation.state(now),
            grants: grants.join(", "),
            domain: invitation
                .email_domain
                .clone()
                .unwrap_or_else(|| "any".into()),
            uses: format!("{} of {}", invitation.uses.len(), invitation.max_uses),
            used_by: invitation
                .uses
                .iter()
                .map(|used| used.email.clone())
                .collect::<Vec<_>>()
                .join(", "),
            expires: timestamps::console_minute(invitation.expires_at),
            created_by: invitation.created_by.clone(),
        }
    }
}

struct FlockChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "invitations.html")]
struct InvitationsPage {
    page: PageContext,
    invitations: Vec<InvitationRow>,
    flocks: Vec<FlockChoice>,
    /// The link of the invitation just created: shown this once.
    created_link: Option<String>,
    error: Option<String>,
    max_days: u64,
    max_uses: u32,
}

fn page(
    signed_in: &SignedIn,
    state: &AppState,
    created_link: Option<String>,
    error: Option<String>,
) -> Result<InvitationsPage, WebError> {
    let who = &signed_in.principal;
    let all = invitations::list(state, who)?;
    let visible = flocks::visible(state, who, None)?;
    let names = |id: &FlockId| {
        visible
            .iter()
            .find(|flock| &flock.id == id)
            .map_or_else(|| id.to_string(), |flock| flock.name.clone())
    };
    let now = state.clock.now();
    Ok(InvitationsPage {
        page: PageContext::signed_in(signed_in, "Invitations"),
        invitations: all
            .iter()
            .map(|invitation| InvitationRow::of(invitation, &names, now))
            .collect(),
        flocks: visible
            .iter()
            .map(|flock| FlockChoice {
                id: flock.id.to_string(),
                name: flock.name.clone(),
            })
            .collect(),
        created_link,
        error,
        max_days: MAX_DAYS,
        max_uses: MAX_USES,
    })
}

async fn list(signed_in: SignedIn, state: web::Data<AppState>) -> PageResult {
    signed_in.require_admin()?;
    ok(&page(&signed_in, &state, None, None)?)
}

#[derive(Deserialize)]
struct CreateForm {
    #[serde(default)]
    access_level: String,
    #[serde(default)]
    flock_id: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    max_uses: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    email_domain: String,
}

async fn create(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let refuse = |error: String| -> PageResult {
        render(
            StatusCode::BAD_REQUEST,
            &page(&signed_in, &state, None, Some(error))?,
        )
    };
    let Ok(access_level) = AccessLevel::parse(&form.access_level) else {
        return refuse("Access level: choose admin or user.".into());
    };
    let Ok(max_uses) = form.max_uses.trim().parse::<u32>() else {
        return refuse(format!("Uses: a whole number from 1 to {MAX_USES}."));
    };
    let Ok(expires_at) = super::forms::optional_utc_time(&form.expires) else {
        return refuse("Expires: choose a date and time with the picker.".into());
    };
    let (mut managed, mut watched) = (Vec::new(), Vec::new());
    if !form.flock_id.is_empty() {
        let Ok(flock) = FlockId::parse(&form.flock_id) else {
            return refuse("Flock: choose one from the list.".into());
        };
        match form.role.as_str() {
            "manager" => managed.push(flock),
            _ => watched.push(flock),
        }
    }
    let request = InvitationRequest {
        access_level,
        managed_flocks: managed,
        watched_flocks: watched,
        expires_at,
        max_uses,
        email_domain: Some(form.email_domain),
    };
    match invitations::create(&state, &signed_in.principal, request).await {
        Ok(Ok(created)) => ok(&page(&signed_in, &state, Some(created.link), None)?),
        Ok(Err(bad)) => refuse(match bad {
            BadRequest::ExpiresTooLate => format!("Expires: at most {MAX_DAYS} days from now."),
            BadRequest::Uses => format!("Uses: a whole number from 1 to {MAX_USES}."),
            BadRequest::Domain => "Email domain: a domain such as example.com, or empty.".into(),
            BadRequest::BothRoles(_) => "Flock: one role per flock.".into(),
        }),
        Err(ServiceError::Refused(refusal @ (Refusal::TimeInThePast | Refusal::FlockNotFound))) => {
            refuse(refusal_message(&refusal))
        }
        Err(error) => Err(error.into()),
    }
}

async fn revoke(
    signed_in: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(_): CsrfForm<crate::web::csrf::EmptyForm>,
) -> PageResult {
    signed_in.require_admin()?;
    let revoked = invitations::revoke(&state, &signed_in.principal, path.into_inner()).await?;
    flash_success(
        &signed_in.session,
        format!(
            "Invitation {} revoked: its link makes no more accounts.",
            revoked.id
        ),
    );
    Ok(see_other("/invitations"))
}

#[derive(Template)]
#[template(path = "invite.html")]
struct AcceptPage {
    page: PageContext,
    action: String,
    grants: String,
    domain: Option<String>,
    email: String,
    error: Option<String>,
}

fn grants_of(invitation: &Invitation) -> String {
    let flocks = invitation.managed_flocks.len() + invitation.watched_flocks.len();
    match flocks {
        0 => format!("a {} account", invitation.access_level),
        n => format!(
            "a {} account with roles in {n} flock{}",
            invitation.access_level,
            if n == 1 { "" } else { "s" }
        ),
    }
}

async fn accept_form(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let secret = path.into_inner();
    let invitation = match invitations::live(&state, &secret) {
        Ok(invitation) => invitation,
        Err(ServiceError::Refused(Refusal::LinkInvalid)) => return link_invalid(&session),
        Err(error) => return Err(error.into()),
    };
    ok(&AcceptPage {
        page: PageContext::anonymous(&session, "Join Roost"),
        action: format!("/invite/{secret}"),
        grants: grants_of(&invitation),
        domain: invitation.email_domain,
        email: String::new(),
        error: None,
    })
}

#[derive(Deserialize)]
struct AcceptForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

async fn accept(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> PageResult {
    let secret = path.into_inner();
    let invitation = match invitations::live(&state, &secret) {
        Ok(invitation) => invitation,
        Err(ServiceError::Refused(Refusal::LinkInvalid)) => return link_invalid(&session),
        Err(error) => return Err(error.into()),
    };
    let form_error = |error: String| {
        render(
            StatusCode::BAD_REQUEST,
            &AcceptPage {
                page: PageContext::anonymous(&session, "Join Roost"),
                action: format!("/invite/{secret}"),
                grants: grants_of(&invitation),
                domain: invitation.email_domain.clone(),
                email: form.email.clone(),
                error: Some(error),
            },
        )
    };
    let Ok(email) = Email::parse(&form.email) else {
        return form_error("Email: enter a valid email address.".into());
    };
    let password = match NewPassword::parse(&form.password, &form.confirm, &email) {
        Ok(password) => password,
        Err(rule) => return form_error(format!("Password: {rule}")),
    };
    let who = Principal::new(
        Who::Anonymous {
            claimed: Some(email.clone()),
        },
        state.origin(&req),
    );
    let user = match invitations::accept(&state, &who, &secret, email, password).await {
        Ok(user) => user,
        Err(ServiceError::Refused(Refusal::LinkInvalid)) => return link_invalid(&session),
        Err(ServiceError::Refused(Refusal::UserExists(_))) => {
            return form_error("Email: this address already has an account.".into());
        }
        Err(ServiceError::Refused(refusal @ Refusal::EmailDomainNotAllowed(_))) => {
            return form_error(format!("Email: {}", refusal_message(&refusal)));
        }
        Err(error) => return Err(error.into()),
    };
    let enforced = state.read(|store| store.settings())?.globally_enforce_2fa;
    let response =
        super::login::after_password(&req, &session, &state, &user, "/", enforced).await?;
    flash_success(&session, "Welcome to Roost: your account is ready.");
    Ok(response)
}
