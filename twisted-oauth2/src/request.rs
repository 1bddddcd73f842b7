//! What the HTTP layer tells the core about a request besides its parameters:
//! [`Transport`], [`Headers`] and [`RequestContext`]. Re-exported from
//! [`crate::endpoint`].

/// The transport facts an endpoint needs about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Transport {
    /// Whether the request came over TLS (directly, or per a trusted proxy header).
    pub secure: bool,
}

/// Read access to a request's headers, implemented by the HTTP layer (the Rocket adapter
/// wraps Rocket's header map; nothing is copied).
pub trait Headers: Send + Sync {
    /// The first value of the header `name` (case-insensitive), if present.
    fn get(&self, name: &str) -> Option<&str>;
    /// Every value of the header `name`, in order.
    fn get_all(&self, name: &str) -> Vec<&str>;
}

/// What every endpoint, grant and guard may know about the HTTP request besides its
/// parameters: method, target URI, host, transport and headers (for proof-of-possession
/// such as DPoP, mTLS, or pushed authorization requests). Built by the HTTP layer with
/// [`RequestContext::new`] and its setters; new facts are added without breaking changes.
#[derive(Clone, Copy, Default)]
#[non_exhaustive]
pub struct RequestContext<'a> {
    /// The method, such as `POST`.
    pub method: &'a str,
    /// The path of the request target, as received.
    pub path: &'a str,
    /// The query of the request target, as received.
    pub query: Option<&'a str>,
    /// The `Host` (authority) the client addressed, if known.
    pub host: Option<&'a str>,
    /// Transport facts.
    pub transport: Transport,
    /// The client's address, as the HTTP layer determines it, if known: what per-caller
    /// limits key on (the fetches of client ID metadata documents).
    pub client_ip: Option<std::net::IpAddr>,
    headers: Option<&'a dyn Headers>,
}

impl std::fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The query may carry a token: print the path only.
        f.debug_struct("RequestContext")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("host", &self.host)
            .field("transport", &self.transport)
            .field("client_ip", &self.client_ip)
            .finish_non_exhaustive()
    }
}

impl<'a> RequestContext<'a> {
    /// A request with this method and path.
    pub fn new(method: &'a str, path: &'a str, transport: Transport) -> Self {
        RequestContext {
            method,
            path,
            query: None,
            host: None,
            transport,
            client_ip: None,
            headers: None,
        }
    }

    /// Sets the query.
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// Sets the host.
    pub fn with_host(mut self, host: Option<&'a str>) -> Self {
        self.host = host;
        self
    }

    /// Sets the client's address.
    pub fn with_client_ip(mut self, client_ip: Option<std::net::IpAddr>) -> Self {
        self.client_ip = client_ip;
        self
    }

    /// Gives access to the headers.
    pub fn with_headers(mut self, headers: &'a dyn Headers) -> Self {
        self.headers = Some(headers);
        self
    }

    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.and_then(|h| h.get(name))
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&'a str> {
        self.headers.map(|h| h.get_all(name)).unwrap_or_default()
    }

    /// The absolute URI of the request (`https://host/path?query`), when the host is
    /// known; the scheme follows the transport.
    pub fn absolute_uri(&self) -> Option<String> {
        let host = self.host?;
        let scheme = if self.transport.secure {
            "https"
        } else {
            "http"
        };
        Some(match self.query {
            Some(q) => format!("{scheme}://{host}{}?{q}", self.path),
            None => format!("{scheme}://{host}{}", self.path),
        })
    }
}
