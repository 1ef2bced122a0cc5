//! Method + path -> [`Route`]. Pure (no IO), so every routing rule is unit
//! tested natively; [`ROUTES`] is also what the OpenAPI test checks against.

use percent_encoding::percent_decode_str;

/// The HTTP methods the API distinguishes; anything else is `Other` and gets
/// a 405 on a known route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// Answered as GET without the body (RFC 9110 9.3.2).
    Head,
    /// Answered with the path's `Allow` (RFC 9110 9.3.7).
    Options,
    /// Any other method, as sent; 405 on a known path.
    Other(String),
}

impl Method {
    /// The method's name as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
            Method::Other(name) => name,
        }
    }
}

/// What a request asks for, with the decoded and validated item id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /items`.
    CreateItem,
    /// `GET /items?userId=..&status=..`.
    ListItems,
    /// `POST /items:batch`.
    Batch,
    /// `GET /items/{id}`.
    GetItem(String),
    /// `PUT /items/{id}`.
    PutItem(String),
    /// `PATCH /items/{id}`.
    PatchItem(String),
    /// `DELETE /items/{id}`.
    DeleteItem(String),
    /// `POST /items/{id}/likes`: an atomic increment of `likes`.
    LikeItem(String),
    /// `GET /openapi.json`.
    OpenApi,
    /// `GET /healthz`.
    Health,
    /// `GET /readyz`: one cheap read of the store.
    Ready,
    /// `OPTIONS` on a known path: its `Allow` value.
    Options(&'static str),
}

/// Why no route was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path.
    NotFound,
    /// The path exists but not with this method; carries the `Allow` value.
    MethodNotAllowed(&'static str),
    /// The id segment is not a valid item id; carries what to fix.
    BadId(String),
}

/// One path template and the methods it serves, as OpenAPI writes it.
pub struct RouteSpec {
    /// The OpenAPI path template, such as `/items/{id}`.
    pub path: &'static str,
    /// The methods OpenAPI documents for it (not HEAD and OPTIONS, which
    /// every path answers).
    pub methods: &'static [&'static str],
}

/// Every path the router knows.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        path: "/items",
        methods: &["GET", "POST"],
    },
    RouteSpec {
        path: "/items:batch",
        methods: &["POST"],
    },
    RouteSpec {
        path: "/items/{id}",
        methods: &["GET", "PUT", "PATCH", "DELETE"],
    },
    RouteSpec {
        path: "/items/{id}/likes",
        methods: &["POST"],
    },
    RouteSpec {
        path: "/openapi.json",
        methods: &["GET"],
    },
    RouteSpec {
        path: "/healthz",
        methods: &["GET"],
    },
    RouteSpec {
        path: "/readyz",
        methods: &["GET"],
    },
];

/// Resolves a request path (without the query string). The route shape is
/// matched first, then the method (405), then the id (400), so a client
/// learns about the most basic mistake first.
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    // HEAD is served wherever GET is, as GET.
    let method = match method {
        Method::Head => &Method::Get,
        other => other,
    };
    let (allow, route) = match segments.as_slice() {
        ["items"] => (
            "GET, HEAD, POST, OPTIONS",
            match method {
                Method::Get => Some(Route::ListItems),
                Method::Post => Some(Route::CreateItem),
                _ => None,
            },
        ),
        ["items:batch"] => (
            "POST, OPTIONS",
            matches!(method, Method::Post).then_some(Route::Batch),
        ),
        ["items", raw] => {
            let make: Option<fn(String) -> Route> = match method {
                Method::Get => Some(Route::GetItem),
                Method::Put => Some(Route::PutItem),
                Method::Patch => Some(Route::PatchItem),
                Method::Delete => Some(Route::DeleteItem),
                _ => None,
            };
            let allow = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
            match make {
                Some(make) => (allow, Some(make(decode_id(raw)?))),
                None => (allow, None),
            }
        }
        ["items", raw, "likes"] => match method {
            Method::Post => ("POST, OPTIONS", Some(Route::LikeItem(decode_id(raw)?))),
            _ => ("POST, OPTIONS", None),
        },
        ["openapi.json"] => (
            "GET, HEAD, OPTIONS",
            matches!(method, Method::Get).then_some(Route::OpenApi),
        ),
        ["healthz"] => (
            "GET, HEAD, OPTIONS",
            matches!(method, Method::Get).then_some(Route::Health),
        ),
        ["readyz"] => (
            "GET, HEAD, OPTIONS",
            matches!(method, Method::Get).then_some(Route::Ready),
        ),
        _ => return Err(RouteError::NotFound),
    };
    match (route, method) {
        (Some(route), _) => Ok(route),
        (None, Method::Options) => Ok(Route::Options(allow)),
        (None, _) => Err(RouteError::MethodNotAllowed(allow)),
    }
}

/// Percent-decodes one path segment and checks it is a valid item id. The
/// segment is split off before decoding, so `%2F` becomes a `/` inside the
/// id (and is then rejected) rather than a path separator.
fn decode_id(raw: &str) -> Result<String, RouteError> {
    let id = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| {
            RouteError::BadId(
                "the item id in the URL is not valid UTF-8 once percent-decoded".into(),
            )
        })?
        .into_owned();
    item_model::validate::id(&id).map_err(|e| {
        RouteError::BadId(match e {
            item_model::StoreError::InvalidInput(message) => message,
            other => other.to_string(),
        })
    })?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_routes() {
        assert_eq!(route(&Method::Get, "/items"), Ok(Route::ListItems));
        assert_eq!(route(&Method::Post, "/items"), Ok(Route::CreateItem));
        assert_eq!(route(&Method::Post, "/items:batch"), Ok(Route::Batch));
        assert_eq!(
            route(&Method::Get, "/items/item-1"),
            Ok(Route::GetItem("item-1".into()))
        );
        assert_eq!(
            route(&Method::Put, "/items/a"),
            Ok(Route::PutItem("a".into()))
        );
        assert_eq!(
            route(&Method::Patch, "/items/a"),
            Ok(Route::PatchItem("a".into()))
        );
        assert_eq!(
            route(&Method::Delete, "/items/a"),
            Ok(Route::DeleteItem("a".into()))
        );
        assert_eq!(
            route(&Method::Post, "/items/a/likes"),
            Ok(Route::LikeItem("a".into()))
        );
        assert_eq!(route(&Method::Get, "/openapi.json"), Ok(Route::OpenApi));
        assert_eq!(route(&Method::Get, "/healthz"), Ok(Route::Health));
        assert_eq!(route(&Method::Get, "/readyz"), Ok(Route::Ready));
        assert_eq!(route(&Method::Head, "/readyz"), Ok(Route::Ready));
    }

    #[test]
    fn ids_are_percent_decoded_then_validated() {
        assert_eq!(
            route(&Method::Get, "/items/hello%20w%C3%B6rld"),
            Ok(Route::GetItem("hello wörld".into()))
        );
        assert_eq!(
            route(&Method::Get, "/items/a:b@c"),
            Ok(Route::GetItem("a:b@c".into()))
        );
        for bad in [
            "/items/a%2Fb",
            "/items/",
            "/items/%2E%2E",
            "/items/__x__",
            "/items/%0A",
            "/items/%FF",
        ] {
            assert!(
                matches!(route(&Method::Get, bad), Err(RouteError::BadId(_))),
                "{bad}"
            );
        }
        let long = format!("/items/{}", "x".repeat(201));
        assert!(matches!(
            route(&Method::Get, &long),
            Err(RouteError::BadId(_))
        ));
    }

    #[test]
    fn unknown_paths_and_methods() {
        for path in [
            "/",
            "",
            "/item",
            "/items/a/b",
            "/items/a/likes/x",
            "/healthz/",
        ] {
            assert_eq!(
                route(&Method::Get, path),
                Err(RouteError::NotFound),
                "{path}"
            );
        }
        assert_eq!(
            route(&Method::Delete, "/items"),
            Err(RouteError::MethodNotAllowed("GET, HEAD, POST, OPTIONS"))
        );
        assert_eq!(
            route(&Method::Other("TRACE".into()), "/items/a"),
            Err(RouteError::MethodNotAllowed(
                "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
            ))
        );
        assert_eq!(
            route(&Method::Get, "/items/a/likes"),
            Err(RouteError::MethodNotAllowed("POST, OPTIONS"))
        );
        // The method is checked before the id.
        assert_eq!(
            route(&Method::Post, "/items/.."),
            Err(RouteError::MethodNotAllowed(
                "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
            ))
        );
    }

    #[test]
    fn head_is_get_and_options_lists_the_methods() {
        assert_eq!(route(&Method::Head, "/healthz"), Ok(Route::Health));
        assert_eq!(
            route(&Method::Head, "/items/a"),
            Ok(Route::GetItem("a".into()))
        );
        assert_eq!(
            route(&Method::Head, "/items:batch"),
            Err(RouteError::MethodNotAllowed("POST, OPTIONS"))
        );
        assert_eq!(
            route(&Method::Options, "/items"),
            Ok(Route::Options("GET, HEAD, POST, OPTIONS"))
        );
        assert_eq!(
            route(&Method::Options, "/items/a/likes"),
            Ok(Route::Options("POST, OPTIONS"))
        );
        assert_eq!(route(&Method::Options, "/nope"), Err(RouteError::NotFound));
    }

    #[test]
    fn allow_values_match_the_route_table() {
        for spec in ROUTES {
            let path = spec.path.replace("{id}", "x");
            let Err(RouteError::MethodNotAllowed(allow)) =
                route(&Method::Other("TRACE".into()), &path)
            else {
                panic!("{path} should answer 405");
            };
            let mut expected: Vec<&str> = Vec::new();
            for method in spec.methods {
                expected.push(method);
                if *method == "GET" {
                    expected.push("HEAD");
                }
            }
            expected.push("OPTIONS");
            assert_eq!(allow, expected.join(", "), "{path}");
        }
    }
}
