//! Builds the running server from a `Config`; `main` and the integration tests both come here.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::Logger;
use actix_web::{App, HttpServer, web};

use crate::api;
use crate::api::throttle::AuthThrottle;
use crate::auth::links::NewLink;
use crate::config::Config;
use crate::mail::{MailError, Mailer};
use crate::state::AppState;
use crate::store::{Store, StoreError, TokenPurpose};

/// Failed API authentications allowed per client address per window.
const AUTH_FAILURE_LIMIT: u32 = 20;
const AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("mail configuration: {0}")]
    Mail(#[from] MailError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    base_url: String,
    store: Store,
    server: Server,
}

impl Application {
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let store = Store::open(&config.data_dir)?;
        let mailer = Mailer::new(
            config.smtp_url.as_deref(),
            &config.mail_from,
            &config.data_dir,
        )?;
        let bind_error = |source| StartupError::Bind {
            bind: config.bind.clone(),
            source,
        };
        let listener = TcpListener::bind(&config.bind).map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let base_url = config.base_url_for_port(address.port());

        let state = AppState {
            store: store.clone(),
            mailer,
            base_url: Arc::from(base_url.as_str()),
            auth_throttle: Arc::new(AuthThrottle::new(AUTH_FAILURE_LIMIT, AUTH_FAILURE_WINDOW)),
        };
        let server = HttpServer::new(move || {
            App::new()
                // The query string can hold an auth_token: log the path only.
                .wrap(
                    Logger::new(r#"%a "%{method}xi %U" %s %b %Dms"#)
                        .custom_request_replace("method", |req| req.method().to_string()),
                )
                .app_data(web::Data::new(state.clone()))
                .configure(api::routes)
        })
        .listen(listener)
        .map_err(bind_error)?
        .run();

        println!("Roost is listening on http://{address} (console at {base_url})");
        if store.user_count()? == 0 {
            let link = NewLink::new(TokenPurpose::Setup, None);
            link.store(&store)?;
            println!(
                "No users yet. Open this one-time link within 24 hours to create the first admin: {}",
                link.url(&base_url)
            );
        }

        Ok(Application {
            port: address.port(),
            base_url,
            store,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
