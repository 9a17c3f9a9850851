//! The API's OpenAPI 3.1 description, built with utoipa's model from the same table that
//! registers the routes (`api_endpoints!` in `api`), served at `/api/v1/openapi.json` without a
//! key and rendered by the console's `/api-docs` page.

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::{HttpResponse, Responder};
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItemBuilder,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder,
    Required, ResponseBuilder, ResponsesBuilder, ServerBuilder,
};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// No key needed.
    Anyone,
    /// Any valid key (flock keys within their flock).
    AnyKey,
    /// A global admin key (or a flock admin key within its flock, where it applies).
    Admin,
    /// A read that only global admin keys may make.
    AdminRead,
}

impl Who {
    pub fn describe(self) -> &'static str {
        match self {
            Who::Anyone => "No key needed.",
            Who::AnyKey => "Any valid API key.",
            Who::Admin => "An admin API key.",
            Who::AdminRead => "A global admin API key.",
        }
    }
}

/// One parameter: from the query string, a form body or a JSON body, alike.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub about: &'static str,
}

/// One endpoint as the route table describes it.
#[derive(Debug, Clone)]
pub struct Described {
    pub method: Method,
    pub path: &'static str,
    pub who: Who,
    pub summary: &'static str,
    pub params: Vec<Param>,
}

impl Described {
    /// `user_flock_assign`: the path's words, for the operation id.
    pub fn operation_id(&self) -> String {
        self.path.trim_start_matches('/').replace(['/', '.'], "_")
    }
}

const KEY_SCHEME: &str = "api_key";

/// The document, built once.
pub fn openapi() -> &'static OpenApi {
    static DOCUMENT: OnceLock<OpenApi> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

fn json_response(description: &str) -> utoipa::openapi::Response {
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "result",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["success", "error"])),
        )
        .required("result");
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(object)).build(),
        )
        .build()
}

fn build() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for endpoint in super::described() {
        let mut operation = OperationBuilder::new()
            .operation_id(Some(endpoint.operation_id()))
            .summary(Some(endpoint.summary))
            .description(Some(format!(
                "{} Parameters come from the query string, a form body or a JSON body alike.",
                endpoint.who.describe()
            )));
        for param in &endpoint.params {
            operation = operation.parameter(
                ParameterBuilder::new()
                    .name(param.name)
                    .parameter_in(ParameterIn::Query)
                    .required(if param.required {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(param.about))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
        let mut responses = ResponsesBuilder::new()
            .response("200", json_response("Done: `{\"result\":\"success\", …}`."));
        if endpoint.who != Who::Anyone {
            responses = responses
                .response("400", json_response("A parameter is missing or malformed."))
                .response("401", json_response("No key, or an unknown one."))
                .response("403", json_response("This key may not call this endpoint."))
                .response(
                    "404",
                    json_response("What the parameters name does not exist."),
                )
                .response("429", json_response("Too many bad keys from this address."));
            operation = operation.security(SecurityRequirement::new::<_, _, &str>(KEY_SCHEME, []));
        }
        paths = paths.path(
            endpoint.path,
            PathItemBuilder::new()
                .operation(
                    http_method(&endpoint.method),
                    operation.responses(responses.build()).build(),
                )
                .build(),
        );
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Roost API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The Management API of a canary console, and Roost's own endpoints. Every answer is JSON with `result`.",
                ))
                .build(),
        )
        .servers(Some([ServerBuilder::new().url("/api/v1").build()]))
        .paths(paths.build())
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    KEY_SCHEME,
                    SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                        "X-Canary-Auth-Token",
                        "An API key (`roost_<id>_<secret>`); an `auth_token` parameter works too.",
                    ))),
                )
                .build(),
        ))
        .build()
}

/// `GET /api/v1/openapi.json`.
pub async fn document() -> impl Responder {
    HttpResponse::Ok().json(openapi())
}
