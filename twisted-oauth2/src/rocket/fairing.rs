//! The [`OAuth2`] fairing: reads the `oauth2` config, builds the server, manages it,
//! mounts the endpoints, purges expired entries, and writes guard challenges onto
//! responses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::http::Header;
use rocket::request::Request;
use rocket::response::Response;
use rocket::{Build, Orbit, Rocket};

use super::builtin_consent::{BuiltinConsent, SignedIn};
use super::consent::OnAuthenticate;
use super::guard::{ChallengeSlot, QueryTokenUsed};
use super::{routes, OAuth2State};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::format::AccessTokenFormat;
use crate::grant::Grant;
use crate::grant_type::GrantType;
use crate::server::{AuthorizationServer, ServerBuilder};
use crate::storage::{ClientStore, PasswordVerifier, Stores};
use crate::token::TokenGenerator;

mod resource_server;

/// What the fairing was given before ignite: a [`ServerBuilder`] (its configuration is
/// read at ignite unless [`OAuth2::config`] gave one) and what only the Rocket side uses.
struct Parts {
    builder: ServerBuilder,
    config_given: bool,
    store_name: Option<String>,
    endpoints: Vec<rocket::Route>,
    on_authenticate: Option<Arc<dyn OnAuthenticate>>,
    builtin_consent: Option<Arc<super::builtin_consent::Inner>>,
    purge_interval: Option<Duration>,
    cors_routes: Vec<(String, &'static str)>,
    origin_paths: Vec<String>,
    device_page: Option<super::device_page::DevicePage>,
    /// What protected routes validate tokens with, instead of the server.
    validator: Option<Arc<dyn crate::validation::TokenValidator>>,
    /// Resource-server-only mode asked for in code ([`OAuth2::resource_server`]).
    resource_server_only: bool,
    /// The clock given with [`OAuth2::clock`] (the resource-server mode's validator uses it).
    clock: Option<Arc<dyn Clock>>,
}

impl Default for Parts {
    fn default() -> Self {
        Parts {
            builder: AuthorizationServer::builder(ServerConfig::default()),
            config_given: false,
            store_name: None,
            endpoints: Vec::new(),
            on_authenticate: None,
            builtin_consent: None,
            purge_interval: None,
            cors_routes: Vec::new(),
            origin_paths: Vec::new(),
            device_page: None,
            validator: None,
            resource_server_only: false,
            clock: None,
        }
    }
}

impl Parts {
    /// Applies a [`ServerBuilder`] setter.
    fn build_with(&mut self, f: impl FnOnce(ServerBuilder) -> ServerBuilder) {
        let b = std::mem::replace(
            &mut self.builder,
            AuthorizationServer::builder(ServerConfig::default()),
        );
        self.builder = f(b);
    }
}

/// The fairing that makes a Rocket app an OAuth 2 authorization server. Attach it once.
///
/// At ignite it reads the `oauth2` table of Rocket's configuration (unless a config was
/// given with [`OAuth2::config`]), builds the [`AuthorizationServer`], manages an
/// [`OAuth2State`], and mounts under the base path (default `/oauth2`): `POST /token`,
/// `POST /revoke`, `POST /introspect`, `GET`/`POST /authorize` when an
/// [`OnAuthenticate`] hook is set, and `GET`/`POST /consent` with the built-in consent pages
/// ([`OAuth2::builtin_consent`]); at the application root it mounts the discovery
/// documents `GET /.well-known/oauth-authorization-server[/issuer path]` and
/// `GET /.well-known/oauth-protected-resource[/resource path]`
/// (see [`crate::endpoint::metadata`]).
pub struct OAuth2 {
    parts: Mutex<Option<Parts>>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth2 { .. }")
    }
}

impl OAuth2 {
    /// A fairing that reads its configuration from Rocket's figment (`oauth2` key).
    ///
    /// With an `[oauth2.resource_server]` table it runs in resource-server-only mode: see
    /// [`OAuth2::resource_server`] and docs/resource-server.md.
    pub fn fairing() -> Self {
        OAuth2 {
            parts: Mutex::new(Some(Parts::default())),
        }
    }

    /// A fairing in **resource-server-only mode**: protected routes ([`Authorized`],
    /// [`AuthResult`], `#[oauth]`) validate tokens with `validator`, and no authorization
    /// server is built. Nothing is mounted under `/oauth2`, no consent hook and no store
    /// are needed; the RFC 9728 document of the validator's
    /// [`protected_resource`](crate::validation::TokenValidator::protected_resource), if
    /// it describes one, is served at `/.well-known/oauth-protected-resource[/path]` and
    /// named in the challenges. [`OAuth2State::server`] is `None`.
    ///
    /// The `[oauth2.resource_server]` table does the same with
    /// [`RemoteValidator`](crate::remote::RemoteValidator) (feature `resource-server`)
    /// against an external issuer, from [`OAuth2::fairing`]. The `oauth2` table's request
    /// settings (`realm`, `allow_access_token_in_query`, `trusted_proxy_header`,
    /// `cors_allowed_origins`, `allowed_origins`) still apply; [`OAuth2::cors_route`] and
    /// [`OAuth2::check_origin`] work as with a server.
    ///
    /// [`Authorized`]: super::Authorized
    /// [`AuthResult`]: super::AuthResult
    pub fn resource_server(validator: Arc<dyn crate::validation::TokenValidator>) -> Self {
        OAuth2::fairing().with(|p| {
            p.validator = Some(validator);
            p.resource_server_only = true;
        })
    }

    fn with(self, f: impl FnOnce(&mut Parts)) -> Self {
        if let Ok(mut g) = self.parts.lock() {
            if let Some(p) = g.as_mut() {
                f(p);
            }
        }
        self
    }

    /// Uses this configuration instead of reading the figment.
    pub fn config(self, config: ServerConfig) -> Self {
        self.with(|p| {
            p.build_with(|b| b.with_config(config));
            p.config_given = true;
        })
    }

    /// Uses these stores, named `name` in the launch log. Default: the stores the
    /// configuration's `storage` URL names (see [`crate::storage::connect`]), in memory
    /// unless set.
    pub fn stores(self, stores: Stores, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|p| {
            p.build_with(|b| b.stores(stores));
            p.store_name = Some(name);
        })
    }

    /// Looks clients up in this store after those listed in config.
    pub fn client_store(self, store: Arc<dyn ClientStore>) -> Self {
        self.with(|p| p.build_with(|b| b.client_store(store)))
    }

    /// Fetches client ID metadata documents with `fetcher` (for example
    /// [`StaticDocuments`](crate::client_metadata::StaticDocuments)) instead of over HTTPS;
    /// see [`crate::client_metadata`].
    pub fn client_metadata_fetcher(
        self,
        fetcher: Arc<dyn crate::client_metadata::ClientMetadataFetcher>,
    ) -> Self {
        self.with(|p| p.build_with(|b| b.client_metadata_fetcher(fetcher)))
    }

    /// Lets browser clients (MCP Inspector, web agents) call one of the application's own
    /// protected routes cross-origin: mounts an `OPTIONS` preflight at `path` answering
    /// `Access-Control-Allow-Methods: methods` and the request headers bearer and MCP clients
    /// send (`Authorization`, `Content-Type`, `DPoP`, `MCP-Protocol-Version`,
    /// `Mcp-Session-Id`, `Mcp-Method`, `Mcp-Name`, and the `Mcp-Param-*` names the preflight
    /// asks for, echoed up to a bound), and adds `Access-Control-Allow-Origin` (no credentials) and
    /// `Access-Control-Expose-Headers: WWW-Authenticate, Mcp-Session-Id` to every answer of
    /// `path`, for the origins of `cors_allowed_origins`. `path` is a static Rocket path such
    /// as `/mcp`.
    ///
    /// The route's `Origin` is validated too ([`OAuth2::check_origin`]).
    pub fn cors_route(self, path: impl Into<String>, methods: &'static str) -> Self {
        let path = path.into();
        self.with(|p| p.cors_routes.push((path, methods)))
    }

    /// Validates `Origin` on the protected route at `path` (a static path such as `/mcp`): a
    /// request whose `Origin` is present and not allowed by the
    /// [`OriginPolicy`](crate::origin::OriginPolicy) (the server's own origins,
    /// `allowed_origins`, the exact `cors_allowed_origins`) is answered `403` by its
    /// [`Authorized`](super::Authorized) guard before the handler runs, without CORS headers;
    /// one without `Origin` is checked as before. Routes opened with
    /// [`OAuth2::cors_route`] are checked without this call.
    pub fn check_origin(self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.with(|p| p.origin_paths.push(path))
    }

    /// Uses this clock (tests).
    pub fn clock(self, clock: Arc<dyn Clock>) -> Self {
        self.with(|p| {
            p.clock = Some(clock.clone());
            p.build_with(|b| b.clock(clock))
        })
    }

    /// Uses this token generator.
    pub fn generator(self, generator: Arc<dyn TokenGenerator>) -> Self {
        self.with(|p| p.build_with(|b| b.generator(generator)))
    }

    /// Registers a grant of the application (an extension grant under an absolute-URI
    /// `grant_type`); see [`Grant`].
    pub fn grant(self, grant: Arc<dyn Grant>) -> Self {
        self.with(|p| p.build_with(|b| b.grant(grant)))
    }

    /// [`OAuth2::grant`] (the name txoauth2 users look for).
    pub fn extension_grant(self, grant: Arc<dyn Grant>) -> Self {
        self.grant(grant)
    }

    /// Sends audit events to `sink` (see [`crate::audit`]).
    pub fn audit(self, sink: Arc<dyn crate::audit::AuditSink>) -> Self {
        self.with(|p| p.build_with(|b| b.audit(sink)))
    }

    /// Uses this access-token format (default: opaque tokens in the store); see
    /// [`AccessTokenFormat`].
    pub fn access_token_format(self, format: Arc<dyn AccessTokenFormat>) -> Self {
        self.with(|p| p.build_with(|b| b.access_token_format(format)))
    }

    /// Registers an access-token format under `name`
    /// ([`ServerBuilder::token_format`](crate::server::ServerBuilder::token_format)).
    pub fn token_format(self, name: impl Into<String>, format: Arc<dyn AccessTokenFormat>) -> Self {
        let name = name.into();
        self.with(|p| p.build_with(|b| b.token_format(name, format)))
    }

    /// Fills the keys slot formats read
    /// ([`ServerBuilder::format_keys`](crate::server::ServerBuilder::format_keys)).
    pub fn format_keys(self, keys: crate::format::FormatKeys) -> Self {
        self.with(|p| p.build_with(|b| b.format_keys(keys)))
    }

    /// Adds a hook run after every access token is issued
    /// ([`ServerBuilder::after_issue`](crate::server::ServerBuilder::after_issue)).
    pub fn after_issue(self, hook: Arc<dyn crate::grant::AfterIssue>) -> Self {
        self.with(|p| p.build_with(|b| b.after_issue(hook)))
    }

    /// Changes the stores at launch, whichever they are
    /// ([`ServerBuilder::store_slots`](crate::server::ServerBuilder::store_slots)): fill or
    /// require extension slots; an empty required slot fails the launch naming it.
    pub fn store_slots(
        self,
        f: impl FnOnce(crate::storage::StoresBuilder) -> crate::storage::StoresBuilder + Send + 'static,
    ) -> Self {
        self.with(|p| p.build_with(|b| b.store_slots(f)))
    }

    /// Makes protected routes validate tokens with `validator` instead of this server
    /// ([`OAuth2State::validator`]; e.g. one trusting a remote authorization server). The
    /// server's own endpoints are unchanged.
    pub fn token_validator(self, validator: Arc<dyn crate::validation::TokenValidator>) -> Self {
        self.with(|p| p.validator = Some(validator))
    }

    /// Adds a member to the RFC 8414 authorization server metadata (built once at
    /// ignite); the members the library computes are not overridden.
    pub fn metadata_member(self, name: impl Into<String>, value: serde_json::Value) -> Self {
        let name = name.into();
        self.with(|p| p.build_with(|b| b.metadata_member(name, value)))
    }

    /// Mounts an extension endpoint beside the built-in ones, under the endpoints' path
    /// (the issuer's path, then `base_path`): a route at `/register` is served at
    /// `/oauth2/register`. Its handler reaches the server through
    /// [`OAuth2State`](super::OAuth2State) in managed state.
    pub fn endpoint(self, route: rocket::Route) -> Self {
        self.with(|p| p.endpoints.push(route))
    }

    /// Mounts these extension routes, as [`OAuth2::endpoint`] does for one.
    pub fn endpoints(self, routes: Vec<rocket::Route>) -> Self {
        self.with(|p| p.endpoints.extend(routes))
    }

    /// Mounts a [`FormEndpoint`](super::toolkit::FormEndpoint) at `path` under the
    /// endpoints' path, with its `405` answers and, if it is a CORS endpoint, its preflight
    /// ([`form_routes`](super::toolkit::form_routes)).
    pub fn form_endpoint(self, path: &str, endpoint: impl super::toolkit::FormEndpoint) -> Self {
        self.endpoints(super::toolkit::form_routes(path, endpoint))
    }

    /// Runs `hook` after every token response of the token endpoint (see
    /// [`ServerBuilder::on_token_issued`]).
    pub fn on_token_issued(self, hook: Arc<dyn crate::endpoint::token::TokenIssued>) -> Self {
        self.with(|p| p.build_with(|b| b.on_token_issued(hook)))
    }

    /// Sets the password verifier for the `password` grant.
    pub fn password_verifier(self, verifier: Arc<dyn PasswordVerifier>) -> Self {
        self.with(|p| p.build_with(|b| b.password_verifier(verifier)))
    }

    /// Sets the consent hook and mounts the authorization endpoint.
    pub fn on_authenticate(self, hook: impl OnAuthenticate) -> Self {
        let hook: Arc<dyn OnAuthenticate> = Arc::new(hook);
        self.with(|p| {
            p.on_authenticate = Some(hook);
            p.builtin_consent = None;
        })
    }

    /// Serves the library's own consent page (instead of an [`OnAuthenticate`] hook):
    /// users `signed_in` knows get the page, anyone else is redirected to `login_url`
    /// with `next=<base>/consent?request_id=…` to come back to. Mounts the authorization
    /// endpoint and `GET`/`POST <base>/consent`. See [`BuiltinConsent`] for a theme or
    /// templates of your own, and the consent chapter of the guide.
    ///
    /// ```no_run
    /// # use rocket::request::Request;
    /// # use twisted_oauth2::rocket::{OAuth2, SignedIn};
    /// struct Session;
    ///
    /// #[rocket::async_trait]
    /// impl SignedIn for Session {
    ///     async fn user(&self, req: &Request<'_>) -> Option<String> {
    ///         req.cookies().get_private("user").map(|c| c.value().to_owned())
    ///     }
    /// }
    ///
    /// let rocket = rocket::build().attach(OAuth2::fairing().builtin_consent(Session, "/login"));
    /// ```
    pub fn builtin_consent(self, signed_in: impl SignedIn, login_url: impl Into<String>) -> Self {
        self.builtin_consent_with(BuiltinConsent::new(signed_in, login_url))
    }

    /// The built-in consent page with the library's own sign-in
    /// ([`BuiltinLogin`](super::BuiltinLogin)): the application supplies only the password
    /// check. Mounts `GET`/`POST <base>/login` and `POST <base>/logout` beside the consent
    /// pages; see the consent chapter of the guide.
    ///
    /// ```no_run
    /// use twisted_oauth2::error::StorageError;
    /// use twisted_oauth2::rocket::OAuth2;
    /// use twisted_oauth2::storage::PasswordVerifier;
    ///
    /// struct Users;
    ///
    /// #[rocket::async_trait]
    /// impl PasswordVerifier for Users {
    ///     async fn verify(&self, user: &str, password: &str) -> Result<Option<String>, StorageError> {
    ///         // A real app compares with a stored password hash.
    ///         Ok((user == "alice" && password == "wonderland").then(|| user.to_owned()))
    ///     }
    /// }
    ///
    /// let rocket = rocket::build().attach(OAuth2::fairing().builtin_login(Users));
    /// ```
    pub fn builtin_login(self, verifier: impl crate::storage::PasswordVerifier) -> Self {
        self.builtin_consent_with(BuiltinConsent::signing_in(super::BuiltinLogin::new(
            verifier,
        )))
    }

    /// [`OAuth2::builtin_consent`] with a [`BuiltinConsent`] carrying a theme or templates.
    pub fn builtin_consent_with(self, consent: BuiltinConsent) -> Self {
        let (hook, inner) = consent.into_parts();
        self.with(|p| {
            p.on_authenticate = Some(hook);
            p.builtin_consent = Some(inner);
        })
    }

    /// Serves the library's device verification page (RFC 8628 §3.3) at the path of
    /// `[oauth2.device] verification_uri` (default `/device`): users `signed_in` knows
    /// enter or confirm a user code and allow or deny it; anyone else is redirected to
    /// `login_url` with `next=` the page. See [`crate::device`] and docs/device-flow.md.
    pub fn device_verification(
        self,
        signed_in: impl SignedIn,
        login_url: impl Into<String>,
    ) -> Self {
        let page = super::device_page::DevicePage::new(Arc::new(signed_in), login_url.into());
        self.with(|p| p.device_page = Some(page))
    }

    /// Fans the validation cache's revocations out on this channel, for stores given with
    /// [`OAuth2::stores`] (see [`ServerBuilder::revocation_channel`](crate::server::ServerBuilder::revocation_channel)).
    /// Stores opened from the `storage` URL get that URL's channel by themselves.
    pub fn revocation_channel(
        self,
        channel: Arc<dyn crate::storage::cache::RevocationChannel>,
    ) -> Self {
        self.with(|p| p.build_with(|b| b.revocation_channel(channel)))
    }

    /// How often expired codes, tokens and pending requests are purged (default 60 s).
    pub fn purge_interval(self, every: Duration) -> Self {
        self.with(|p| p.purge_interval = Some(every))
    }
}

#[rocket::async_trait]
impl Fairing for OAuth2 {
    fn info(&self) -> Info {
        Info {
            name: "twisted-oauth2",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let Some(mut parts) = self.parts.lock().ok().and_then(|mut g| g.take()) else {
            log::error!("twisted-oauth2: the OAuth2 fairing was ignited twice");
            return Err(rocket);
        };
        let Some(config) = load_config(&rocket, &mut parts) else {
            return Err(rocket);
        };
        if parts.resource_server_only || config.resource_server.is_some() {
            return resource_server::ignite(rocket, parts, config).await;
        }
        let Some(config) = settle_issuer(&rocket, config) else {
            return Err(rocket);
        };
        if !consent_hook_present(&config, &parts) {
            return Err(rocket);
        }
        let Some(keys) = signing_keys(&config, &mut parts) else {
            return Err(rocket);
        };
        let has_client_store = parts.builder.has_client_store();
        let authorize_by = super::launch::AuthorizeBy::of((
            parts.on_authenticate.is_some(),
            parts.builtin_consent.clone(),
        ));
        let Some(store_name) = open_storage(&mut parts, config).await else {
            return Err(rocket);
        };
        if let Some(keys) = keys {
            parts.build_with(|b| b.format_keys(keys));
        }
        let Some(server) = build_server(&mut parts) else {
            return Err(rocket);
        };
        #[cfg(feature = "jwt")]
        if let Err(e) = super::signing_keys::start(&server).await {
            log::error!("twisted-oauth2: {e}");
            return Err(rocket);
        }
        let Some(mounted) = endpoint_routes(&server, &mut parts) else {
            return Err(rocket);
        };
        let rocket = match mounted.error_pages {
            Some(pages) => rocket.manage(super::response::ErrorPages(Box::new(pages))),
            None => rocket,
        };
        let info = LaunchInfo {
            authorize_by,
            store: store_name,
            purge_every: parts.purge_interval.unwrap_or(Duration::from_secs(60)),
            client_store: has_client_store,
        };
        let base = server.endpoints_path();
        Ok(rocket
            .manage(state(server, parts))
            .manage(info)
            .mount(base, mounted.endpoints)
            .mount("/", mounted.well_known)
            .mount("/", mounted.root)
            .mount("/", mounted.cors_preflights))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let Some(state) = rocket.state::<OAuth2State>() else {
            return;
        };
        let Some(server) = state.server().cloned() else {
            resource_server::liftoff(rocket, state);
            return;
        };
        let Some(info) = rocket.state::<LaunchInfo>() else {
            return;
        };
        let cfg = server.config();
        let mut lines = vec![
            "twisted-oauth2 authorization server".to_owned(),
            format!("  issuer:     {}", server.issuer()),
            format!("  token:      POST {}", server.endpoint_url("token")),
        ];
        let authorize_path = format!(
            "{}/authorize",
            server.endpoints_path().trim_end_matches('/')
        );
        let has_authorize = rocket
            .routes()
            .any(|r| r.uri.path() == authorize_path.as_str());
        lines.push(format!(
            "  revoke:     POST {}",
            server.endpoint_url("revoke")
        ));
        lines.push(format!(
            "  introspect: POST {}",
            server.endpoint_url("introspect")
        ));
        lines.push(format!(
            "  metadata:   GET {}",
            crate::endpoint::metadata::authorization_server_metadata_url(&server)
        ));
        lines.extend(super::launch::served_lines(
            &server,
            state,
            &info.authorize_by,
            has_authorize,
        ));
        #[cfg(feature = "jwt")]
        lines.extend(super::signing_keys::banner_line(&server));
        lines.push(super::launch::grants_line(&server, has_authorize));
        lines.push(format!("  store:      {}", info.store));
        lines.push(match server.validation_cache() {
            Some(p) => format!("  validation cache: {p}"),
            None => "  validation cache: off".to_owned(),
        });
        let scopes = state.scopes_used();
        warn_listener_mismatch(rocket, &server);
        // Registered clients and metadata-document clients may obtain any supported scope.
        let dynamic_clients = cfg.registration.enabled || cfg.client_metadata.enabled;
        if !info.client_store && !dynamic_clients {
            for (scope, routes) in state.scope_routes() {
                if !obtainable(&server, &scope) {
                    log::warn!(
                        "twisted-oauth2: {} require{} scope `{scope}`, which no configured client may \
                         obtain: every token will get 403 (add it to a client's `scopes` and, if set, \
                         to `scopes_supported`)",
                        routes.join(", "),
                        if routes.len() == 1 { "s" } else { "" }
                    );
                }
            }
        }
        if !scopes.is_empty() {
            lines.push(format!(
                "  protected routes require: {}",
                scopes.into_iter().collect::<Vec<_>>().join(" ")
            ));
        }
        log::info!("{}", lines.join("\n"));
        if cfg.allow_insecure_request_debug {
            log::warn!(
                "twisted-oauth2: INSECURE: allow_insecure_request_debug = true: tokens, codes and secrets \
                 are accepted over plain HTTP. Never use this setting in production."
            );
        } else if !rocket.config().tls_enabled() && cfg.trusted_proxy_header.is_none() {
            log::warn!(
                "twisted-oauth2: TLS is off and no trusted_proxy_header is set: every OAuth request over plain \
                 HTTP will be refused with invalid_request"
            );
        }
        let open_registration =
            cfg.registration.enabled && cfg.registration.initial_access_token_sha256.is_none();
        if let (true, Some(h), true) = (
            open_registration,
            rocket.config().ip_header.as_ref(),
            cfg.trusted_proxies.is_empty(),
        ) {
            log::warn!(
                "twisted-oauth2: registration is open and Rocket's ip_header (`{h}`) is on, but no                  oauth2.trusted_proxies are set: any client can send `{h}`, so the registration limits key on                  the peer address and ignore it. Behind a reverse proxy set oauth2.trusted_proxies (and                  oauth2.client_ip_header); without one set Rocket's `ip_header = false` (docs/registration.md)"
            );
        }
        if cfg.allow_access_token_in_query {
            log::warn!("twisted-oauth2: access tokens are accepted in URL queries (RFC 6750 section 2.3 discourages this)");
        }
        if cfg.pkce_allow_plain {
            log::warn!("twisted-oauth2: PKCE method `plain` is enabled; S256 is the safe choice");
        }
        if log::max_level() >= log::LevelFilter::Debug && !super::RedactingLogger::is_installed() {
            log::warn!(
                "twisted-oauth2: SECRETS WILL BE LOGGED: at log level debug Rocket prints Authorization and Cookie \
                 headers, form fields (passwords, client secrets, codes, tokens) and redirects with codes; call \
                 twisted_oauth2::rocket::RedactingLogger::install() before rocket::build() (docs/security.md, Logging)"
            );
        }
        let every = info.purge_every;
        let shutdown = rocket.shutdown();
        #[cfg(feature = "jwt")]
        super::signing_keys::spawn_rotation(server.clone(), shutdown.clone());
        rocket::tokio::spawn(async move {
            let mut shutdown = std::pin::pin!(shutdown);
            loop {
                rocket::tokio::select! {
                    _ = &mut shutdown => break,
                    _ = rocket::tokio::time::sleep(every) => {
                        if let Some(d) = &server.stores().device_codes {
                            if let Err(e) = d.purge_expired(server.now()).await {
                                log::warn!("twisted-oauth2: device-code purge failed: {e}");
                            }
                        }
                        match server.stores().purge.purge_expired(server.now()).await {
                            Ok(n) if n > 0 => log::debug!("twisted-oauth2: purged {n} expired entries"),
                            Ok(_) => {}
                            Err(e) => log::warn!("twisted-oauth2: purge failed: {e}"),
                        }
                    }
                }
            }
        });
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        super::response::frame_options(res);
        if req
            .local_cache(super::guard::OriginRefused::default)
            .0
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // Refused for its Origin: no challenge and no CORS headers for that page.
            return;
        }
        let pending = req
            .local_cache(ChallengeSlot::default)
            .0
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        let state = req.rocket().state::<OAuth2State>();
        if let Some(err) = pending {
            let code = res.status().code;
            if code == err.status() && code >= 500 {
                // An outage of what the validator relies on (`temporarily_unavailable`):
                // the RFC 6749 §5.2 JSON body instead of the catcher's page, and the
                // error's `Retry-After`.
                let body = err.to_json();
                res.set_header(rocket::http::ContentType::JSON);
                res.set_sized_body(body.len(), std::io::Cursor::new(body));
                super::response::no_store(res);
                for (name, value) in err.headers() {
                    res.set_header(Header::new(name.to_owned(), value.to_owned()));
                }
            }
            if matches!(code, 400 | 401 | 403) && !res.headers().contains("WWW-Authenticate") {
                if let Some(state) = state {
                    let metadata = state.resource_metadata_url_for(req.uri().path().as_str());
                    let metadata = Some(&*metadata).filter(|m| !m.is_empty());
                    if let Some(v) = err.www_authenticate(state.realm(), metadata) {
                        res.set_header(Header::new("WWW-Authenticate", v));
                    }
                    // A browser client (an MCP inspector, a web agent) must be able to read
                    // the challenge to discover the authorization server.
                    if let Some(origin) = state.cors_origin(req) {
                        res.set_header(Header::new(
                            "Access-Control-Expose-Headers",
                            "WWW-Authenticate",
                        ));
                        if !res.headers().contains("Access-Control-Allow-Origin") {
                            set_allow_origin(res, origin);
                        }
                    }
                }
            }
        }
        let cors_endpoint = req
            .local_cache(super::CorsEndpoint::default)
            .0
            .load(std::sync::atomic::Ordering::Relaxed);
        let cors_route = state.is_some_and(|s| {
            !s.cors_paths.is_empty() && s.cors_paths.iter().any(|p| p == req.uri().path().as_str())
        });
        if cors_route && !res.headers().contains("Access-Control-Allow-Origin") {
            if let Some(origin) = state.and_then(|s| s.cors_origin(req)) {
                set_allow_origin(res, origin);
                res.set_header(Header::new(
                    "Access-Control-Expose-Headers",
                    "WWW-Authenticate, Mcp-Session-Id",
                ));
            }
        }
        if cors_endpoint && !res.headers().contains("Access-Control-Allow-Origin") {
            if let Some(origin) = state.and_then(|s| s.cors_origin(req)) {
                set_allow_origin(res, origin);
                res.set_header(Header::new(
                    "Access-Control-Expose-Headers",
                    "WWW-Authenticate",
                ));
            }
        }
        if req
            .local_cache(QueryTokenUsed::default)
            .0
            .load(std::sync::atomic::Ordering::Relaxed)
            && !res.headers().get("Cache-Control").any(|v| {
                let v = v.to_ascii_lowercase();
                v.contains("private") || v.contains("no-store")
            })
        {
            // RFC 6750 §2.3: a response to a request authorized by a query token must not
            // be stored by shared caches, whatever the handler set.
            res.set_header(Header::new("Cache-Control", "private"));
        }
    }
}

/// `Access-Control-Allow-Origin` (and `Vary: Origin` when it names one origin).
fn set_allow_origin(res: &mut Response<'_>, origin: String) {
    if origin != "*" {
        res.adjoin_header(Header::new("Vary", "Origin"));
    }
    res.set_header(Header::new("Access-Control-Allow-Origin", origin));
}

/// An error and its sources, `: `-separated (causes never carry secrets).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Ignite step: the configuration (given in code, else the figment's `oauth2` table, else
/// the defaults); `None` after logging why not.
fn load_config(rocket: &Rocket<Build>, parts: &mut Parts) -> Option<ServerConfig> {
    Some(if parts.config_given {
        let mut taken = None;
        parts.build_with(|b| {
            let (b, c) = b.take_config();
            taken = Some(c);
            b
        });
        taken.unwrap_or_default()
    } else if rocket.figment().contains("oauth2") {
        match rocket.figment().extract_inner::<ServerConfig>("oauth2") {
            Ok(c) => c,
            Err(e) => {
                for line in config_error_lines(e) {
                    log::error!("twisted-oauth2: {line}");
                }
                return None;
            }
        }
    } else {
        ServerConfig::default()
    })
}

/// Ignite step: the authorization server's issuer settled (derived from Rocket's address
/// under `allow_insecure_request_debug`); `None` after logging why not.
fn settle_issuer(rocket: &Rocket<Build>, mut config: ServerConfig) -> Option<ServerConfig> {
    if config.issuer.trim().is_empty() {
        if !config.allow_insecure_request_debug {
            log::error!(
                "twisted-oauth2: `oauth2.issuer` is not set: set it to the public URL clients use \
                 (e.g. issuer = \"https://auth.example.com\"); with allow_insecure_request_debug it \
                 is derived from Rocket's address and port"
            );
            return None;
        }
        let rocket_config = rocket::Config::try_from(rocket.figment()).unwrap_or_default();
        config.issuer = derived_issuer(&rocket_config);
        log::warn!(
            "twisted-oauth2: `oauth2.issuer` is not set: using {} (derived from Rocket's address and \
             port, allowed by allow_insecure_request_debug); set it to the public URL clients use",
            config.issuer
        );
    }
    Some(config)
}

/// Ignite step: clients that may arrive for the code grant (configured ones, registered
/// ones, metadata-document ones) need a consent hook, else `/authorize` would not exist
/// ([`super::launch::consent_hook`]); `false` after logging why and both fixes.
fn consent_hook_present(config: &ServerConfig, parts: &Parts) -> bool {
    match super::launch::consent_hook(config, parts.on_authenticate.is_some()) {
        Ok(()) => true,
        Err(e) => {
            log::error!("twisted-oauth2: {e}");
            false
        }
    }
}

/// Ignite step: stores given in code win; otherwise the `storage` URL (default `memory`)
/// is connected, with its revocation channel when the validation cache or the `jwt` format
/// needs it ([`ServerConfig::wants_revocation_channel`]). Sets the
/// configuration on the builder; the store's name for the launch log, or `None` after
/// logging why not.
async fn open_storage(parts: &mut Parts, config: ServerConfig) -> Option<String> {
    let has_code_stores = parts.builder.has_stores();
    let mut has_channel = parts.builder.has_revocation_channel();
    let mut store_name = parts.store_name.take();
    if !has_code_stores && crate::storage::storage_kind(&config.storage) != "memory" {
        let what = crate::storage::describe_storage(&config.storage);
        let stores = match crate::storage::connect(&config.storage).await {
            Ok(s) => s,
            Err(e) => {
                log::error!(
                    "twisted-oauth2: cannot open the `storage` {what}: {}",
                    error_chain(&e)
                );
                return None;
            }
        };
        if config.wants_revocation_channel() && !has_channel {
            match crate::storage::cache::revocation_channel_for(&config.storage).await {
                Ok(c) => {
                    parts.build_with(|b| b.revocation_channel(c));
                    has_channel = true;
                }
                Err(e) => {
                    log::error!(
                        "twisted-oauth2: cannot open the revocation channel (validation \
                         cache, JWT denylist) on the `storage` {what}: {}",
                        error_chain(&e)
                    );
                    return None;
                }
            }
        }
        parts.build_with(|b| b.stores(stores));
        store_name = Some(what);
    }
    if config.validation_cache.enabled && !has_channel && has_code_stores {
        log::warn!(
            "twisted-oauth2: the validation cache evicts revoked tokens in this process only: \
             the stores were given in code without OAuth2::revocation_channel; if other \
             instances share them, give it (docs/validation-cache.md)"
        );
    }
    parts.build_with(|b| b.with_config(config));
    Some(store_name.unwrap_or_else(|| "memory (not durable)".into()))
}

/// Ignite step: with `signing_keys.enabled`, the key ring for the server's keys slot
/// (`Some(None)` when off); `None` after logging why not (bad keys, no key-encryption
/// key, or a build without the `jwt` feature).
fn signing_keys(
    config: &ServerConfig,
    parts: &mut Parts,
) -> Option<Option<crate::format::FormatKeys>> {
    #[cfg(feature = "jwt")]
    {
        let mut made = None;
        let mut failed = None;
        parts.build_with(|mut b| {
            match super::signing_keys::make_ring(config, &mut b) {
                Ok(r) => made = r,
                Err(e) => failed = Some(e),
            }
            b
        });
        if let Some(e) = failed {
            log::error!("twisted-oauth2: {e}");
            return None;
        }
        let Some(ring) = made else {
            return Some(None);
        };
        Some(Some(super::signing_keys::slot(&ring)))
    }
    #[cfg(not(feature = "jwt"))]
    {
        let _ = parts;
        if config.signing_keys.enabled {
            log::error!(
                "twisted-oauth2: oauth2.signing_keys.enabled needs the `jwt` cargo feature of \
                 twisted-oauth2 (features = [\"jwt\"])"
            );
            return None;
        }
        Some(None)
    }
}

/// Ignite step: the server, from the builder; `None` after logging why not.
fn build_server(parts: &mut Parts) -> Option<Arc<AuthorizationServer>> {
    let builder = std::mem::replace(
        &mut parts.builder,
        AuthorizationServer::builder(ServerConfig::default()),
    );
    match builder.build() {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            log::error!("twisted-oauth2: invalid configuration: {e}");
            None
        }
    }
}

/// What the fairing mounts.
struct Mounted {
    /// Under the endpoints' path.
    endpoints: Vec<rocket::Route>,
    /// Pages at the root (the device verification page).
    root: Vec<rocket::Route>,
    /// The discovery documents, at the root.
    well_known: Vec<rocket::Route>,
    /// The preflights of the application's CORS routes, at the root.
    cors_preflights: Vec<rocket::Route>,
    /// The built-in consent's error pages, when it is on.
    error_pages: Option<super::builtin_consent::Pages>,
}

/// Ignite step: the built-in endpoints, registration (as an extension endpoint when
/// `registration.enabled`), the application's endpoints, the built-in consent pages, the
/// discovery documents and the CORS preflights; `None` after logging why not.
fn endpoint_routes(server: &Arc<AuthorizationServer>, parts: &mut Parts) -> Option<Mounted> {
    let authorize_mounted = parts.on_authenticate.is_some();
    let mut endpoints = routes::routes(server, parts.on_authenticate.take());
    if server.config().registration.enabled {
        endpoints.extend(super::register::routes());
    }
    if server.config().device.enabled {
        endpoints.extend(super::toolkit::form_routes(
            "/device_authorization",
            super::device::DeviceAuthorizationEndpoint,
        ));
    }
    #[cfg(feature = "jwt")]
    if crate::endpoint::jwks::key_ring(server).is_some() {
        endpoints.extend(super::signing_keys::routes());
    }
    endpoints.append(&mut parts.endpoints);
    let mut root = Vec::new();
    if let Some(page) = parts.device_page.take() {
        if !server.config().device.enabled {
            log::error!(
                "twisted-oauth2: OAuth2::device_verification is set but `oauth2.device.enabled` is not"
            );
            return None;
        }
        match page.routes(server) {
            Ok(r) => root.extend(r),
            Err(e) => {
                log::error!("twisted-oauth2: {e}");
                return None;
            }
        }
    }
    let error_pages = match &parts.builtin_consent {
        Some(inner) => match super::builtin_consent::routes(server, inner) {
            Ok(r) => {
                endpoints.extend(r);
                Some(super::builtin_consent::Pages(inner.clone()))
            }
            Err(e) => {
                log::error!("twisted-oauth2: {e}");
                return None;
            }
        },
        None => None,
    };
    let well_known = match routes::well_known_routes(server, authorize_mounted) {
        Ok(r) => r,
        Err(e) => {
            log::error!("twisted-oauth2: invalid configuration: {e}");
            return None;
        }
    };
    let cors_preflights = cors_preflights(parts)?;
    Some(Mounted {
        endpoints,
        root,
        well_known,
        cors_preflights,
        error_pages,
    })
}

/// Ignite step: the preflights of the application's CORS routes; `None` after logging why
/// not.
fn cors_preflights(parts: &Parts) -> Option<Vec<rocket::Route>> {
    let mut cors_preflights = Vec::with_capacity(parts.cors_routes.len());
    for (path, methods) in &parts.cors_routes {
        if !path.starts_with('/') || path.contains('<') {
            log::error!(
                "twisted-oauth2: cors_route `{}` must be a static path starting with `/`",
                crate::error::printable(path)
            );
            return None;
        }
        cors_preflights.push(rocket::Route::new(
            rocket::http::Method::Options,
            path,
            super::Preflight::new(methods),
        ));
    }
    Some(cors_preflights)
}

/// The routes whose `Origin` is validated (the `cors_route` paths, then the `check_origin`
/// ones) and the routes opened to browser clients (the `cors_route` paths).
fn route_paths(
    cors_routes: Vec<(String, &'static str)>,
    check_origin: Vec<String>,
) -> (Vec<String>, Vec<String>) {
    let cors: Vec<String> = cors_routes.into_iter().map(|(p, _)| p).collect();
    let origin = cors.iter().cloned().chain(check_origin).collect();
    (origin, cors)
}

/// Ignite step: the managed [`OAuth2State`].
fn state(server: Arc<AuthorizationServer>, parts: Parts) -> OAuth2State {
    let (origin_paths, cors_paths) = route_paths(parts.cors_routes, parts.origin_paths);
    OAuth2State {
        resource_metadata: crate::endpoint::metadata::protected_resource_metadata_url(&server),
        validator: parts.validator.unwrap_or_else(|| server.clone()),
        realm: server.config().realm.clone(),
        origin_policy: server.origin_policy().clone(),
        cors_allowed_origins: server.config().cors_allowed_origins.clone(),
        server: Some(server),
        scopes_used: Default::default(),
        scope_routes: Default::default(),
        origin_paths,
        cors_paths,
    }
}

/// Facts for the launch log and the purge task.
struct LaunchInfo {
    authorize_by: super::launch::AuthorizeBy,
    store: String,
    purge_every: Duration,
    /// Clients may come from an app-supplied store, beyond those in config.
    client_store: bool,
}

/// Units of the numeric settings, for error messages.
fn unit_of(key: &str) -> Option<&'static str> {
    match key {
        k if k.ends_with("_lifetime") => Some("seconds"),
        "max_body_size" | "max_query_length" | "max_state_length" | "max_scope_length" => {
            Some("bytes")
        }
        "max_parameters" | "max_pending_requests" | "max_pending_per_user_agent" => Some("a count"),
        _ => None,
    }
}

/// One line per configuration error, naming the key as `oauth2.<key>` (figment's own
/// rendering interpolates the profile into the path) and the unit of numeric settings.
fn config_error_lines(e: rocket::figment::Error) -> Vec<String> {
    e.into_iter()
        .map(|err| {
            // `extract_inner("oauth2")` reports the table's name after the key
            // (`access_token_lifetime.oauth2`): drop it wherever figment put it.
            let mut path: Vec<&str> = err.path.iter().map(String::as_str).collect();
            if path.last() == Some(&"oauth2") {
                path.pop();
            }
            if path.first() == Some(&"oauth2") {
                path.remove(0);
            }
            let key = if path.is_empty() {
                "oauth2".to_owned()
            } else {
                format!("oauth2.{}", path.join("."))
            };
            let unit = path
                .last()
                .and_then(|k| unit_of(k))
                .map(|u| format!(" (the value is in {u})"))
                .unwrap_or_default();
            let kind = super::launch::describe_kind(&err.kind);
            format!("invalid configuration `{key}`: {kind}{unit}")
        })
        .collect()
}

/// `http(s)://address:port` of Rocket's listener; an unspecified address (`0.0.0.0`, `::`)
/// becomes the loopback address.
fn derived_issuer(config: &rocket::Config) -> String {
    let scheme = if config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let host = match config.address {
        a if a.is_unspecified() && a.is_ipv4() => "127.0.0.1".to_owned(),
        a if a.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    format!("{scheme}://{host}:{}", config.port)
}

/// Warns when the issuer's port (or IP address) is not where Rocket listens and no proxy
/// header says a reverse proxy is in between: clients would be sent elsewhere.
fn warn_listener_mismatch(rocket: &Rocket<Orbit>, server: &AuthorizationServer) {
    if server.config().trusted_proxy_header.is_some() {
        return;
    }
    let Ok(url) = url::Url::parse(server.issuer()) else {
        return;
    };
    let config = rocket.config();
    let port_differs = url.port_or_known_default() != Some(config.port);
    let host_differs = match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            !config.address.is_unspecified() && config.address != std::net::IpAddr::V4(ip)
        }
        Some(url::Host::Ipv6(ip)) => {
            !config.address.is_unspecified() && config.address != std::net::IpAddr::V6(ip)
        }
        _ => false,
    };
    if port_differs || host_differs {
        log::warn!(
            "twisted-oauth2: the issuer {} is not where Rocket listens ({}:{}) and no \
             trusted_proxy_header is set: clients will be sent to the issuer's address; set `oauth2.issuer` \
             to the URL clients use, or `trusted_proxy_header` if a reverse proxy forwards to Rocket",
            server.issuer(),
            config.address,
            config.port
        );
    }
}

/// Whether some client from the configuration may get a token with every scope of
/// `scope` (space-separated): it uses a grant that issues tokens and its scopes (and the
/// server's `scopes_supported`) include them.
fn obtainable(server: &AuthorizationServer, scope: &str) -> bool {
    let needed: Vec<&str> = scope.split(' ').filter(|t| !t.is_empty()).collect();
    // `n` or a scope including it (scope_includes) is in `list`.
    let covers = |list: &[String], n: &str| {
        list.iter().any(|x| x == n)
            || server
                .scope_hierarchy()
                .including(n)
                .any(|i| list.iter().any(|x| x == i))
    };
    let supported = server.config().scopes_supported.as_ref();
    if supported.is_some_and(|s| !needed.iter().all(|n| covers(s, n))) {
        return false;
    }
    server.config().clients.iter().any(|c| {
        let issues = c
            .grant_types
            .iter()
            .any(|g| GrantType::new(g.clone()).starts_a_grant());
        let scoped = c
            .scopes
            .as_ref()
            .is_none_or(|s| needed.iter().all(|n| covers(s, n)));
        issues && scoped
    })
}
