//! `/api-docs`: the API's reference in the console, rendered on the server from the same table
//! that registers the routes and builds `/api/v1/openapi.json` (no script, no CDN).

use actix_web::web;
use askama::Template;

use super::page::{PageContext, PageResult, ok};
use super::session::SignedIn;
use crate::api::openapi::Described;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-docs", web::get().to(show));
}

#[derive(Template)]
#[template(path = "api_docs.html")]
struct ApiDocsPage {
    page: PageContext,
    endpoints: Vec<Described>,
}

async fn show(signed_in: SignedIn) -> PageResult {
    ok(&ApiDocsPage {
        page: PageContext::signed_in(&signed_in, "API reference"),
        endpoints: crate::api::described(),
    })
}
