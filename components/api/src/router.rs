//! Method + path -> [`Route`]. Pure (no IO), so every routing rule is unit
//! tested natively; [`ROUTES`] is also what the OpenAPI test checks against.

use percent_encoding::percent_decode_str;

/// The HTTP methods the API distinguishes; anything else is `Other` and gets
/// a 405 on a known route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Other(String),
}

/// What a request asks for, with the decoded and validated item id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CreateItem,
    ListItems,
    Batch,
    GetItem(String),
    PutItem(String),
    PatchItem(String),
    DeleteItem(String),
    LikeItem(String),
    OpenApi,
    Health,
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
    pub path: &'static str,
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
];

/// Resolves a request path (without the query string). The route shape is
/// matched first, then the method (405), then the id (400), so a client
/// learns about the most basic mistake first.
pub fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    match segments.as_slice() {
        ["items"] => match method {
            Method::Get => Ok(Route::ListItems),
            Method::Post => Ok(Route::CreateItem),
            _ => Err(RouteError::MethodNotAllowed("GET, POST")),
        },
        ["items:batch"] => match method {
            Method::Post => Ok(Route::Batch),
            _ => Err(RouteError::MethodNotAllowed("POST")),
        },
        ["items", raw] => {
            let make: fn(String) -> Route = match method {
                Method::Get => Route::GetItem,
                Method::Put => Route::PutItem,
                Method::Patch => Route::PatchItem,
                Method::Delete => Route::DeleteItem,
                _ => return Err(RouteError::MethodNotAllowed("GET, PUT, PATCH, DELETE")),
            };
            Ok(make(decode_id(raw)?))
        }
        ["items", raw, "likes"] => match method {
            Method::Post => Ok(Route::LikeItem(decode_id(raw)?)),
            _ => Err(RouteError::MethodNotAllowed("POST")),
        },
        ["openapi.json"] => match method {
            Method::Get => Ok(Route::OpenApi),
            _ => Err(RouteError::MethodNotAllowed("GET")),
        },
        ["healthz"] => match method {
            Method::Get => Ok(Route::Health),
            _ => Err(RouteError::MethodNotAllowed("GET")),
        },
        _ => Err(RouteError::NotFound),
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
            Err(RouteError::MethodNotAllowed("GET, POST"))
        );
        assert_eq!(
            route(&Method::Other("OPTIONS".into()), "/items/a"),
            Err(RouteError::MethodNotAllowed("GET, PUT, PATCH, DELETE"))
        );
        assert_eq!(
            route(&Method::Get, "/items/a/likes"),
            Err(RouteError::MethodNotAllowed("POST"))
        );
        // The method is checked before the id.
        assert_eq!(
            route(&Method::Post, "/items/.."),
            Err(RouteError::MethodNotAllowed("GET, PUT, PATCH, DELETE"))
        );
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
            assert_eq!(allow, spec.methods.join(", "), "{path}");
        }
    }
}
