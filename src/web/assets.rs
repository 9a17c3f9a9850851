//! Static files, compiled into the binary.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "roost.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../static/roost.css"),
    },
    Asset {
        name: "webauthn.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../static/webauthn.js"),
    },
    Asset {
        name: "roost.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../static/roost.svg"),
    },
];

pub async fn serve(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|asset| asset.name == name.as_str()) {
        Some(asset) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, asset.content_type))
            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
            .body(asset.bytes),
        None => HttpResponse::NotFound().finish(),
    }
}
