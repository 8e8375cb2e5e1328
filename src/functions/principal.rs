//! Who is calling: the principal that the Functions host's authentication (Easy Auth) forwards.

use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;

use crate::workflow::model::Principal;

const PRINCIPAL: &str = "x-ms-client-principal";
const PRINCIPAL_NAME: &str = "x-ms-client-principal-name";
const PRINCIPAL_ID: &str = "x-ms-client-principal-id";

#[derive(Deserialize)]
struct ClientPrincipal {
    #[serde(default)]
    claims: Vec<Claim>,
}

#[derive(Deserialize)]
struct Claim {
    typ: String,
    val: String,
}

/// The caller, when the host authenticated one. The -NAME and -ID headers win; the encoded
/// principal fills in what they leave out.
pub fn from_headers(headers: &HeaderMap) -> Option<Principal> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let mut principal = Principal {
        id: header(PRINCIPAL_ID),
        name: header(PRINCIPAL_NAME),
    };

    if let Some(encoded) = header(PRINCIPAL) {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.as_bytes());
        let parsed = decoded
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ClientPrincipal>(&bytes).ok());
        if let Some(parsed) = parsed {
            let claim = |types: &[&str]| {
                parsed
                    .claims
                    .iter()
                    .find(|claim| types.iter().any(|t| claim.typ.eq_ignore_ascii_case(t)))
                    .map(|claim| claim.val.clone())
            };
            principal.id = principal.id.or_else(|| {
                claim(&[
                    "http://schemas.microsoft.com/identity/claims/objectidentifier",
                    "oid",
                ])
            });
            principal.name = principal
                .name
                .or_else(|| claim(&["preferred_username", "name", "email"]));
        }
    }

    (principal.id.is_some() || principal.name.is_some()).then_some(principal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_id_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(PRINCIPAL_NAME, "ada@example.com".parse().unwrap());
        headers.insert(PRINCIPAL_ID, "1234".parse().unwrap());
        let principal = from_headers(&headers).unwrap();
        assert_eq!(principal.name.as_deref(), Some("ada@example.com"));
        assert_eq!(principal.id.as_deref(), Some("1234"));
    }

    #[test]
    fn decodes_the_encoded_principal() {
        let json = r#"{"auth_typ":"aad","claims":[{"typ":"oid","val":"abcd"},{"typ":"preferred_username","val":"bob@example.com"}]}"#;
        let encoded = base64::engine::general_purpose::STANDARD.encode(json);
        let mut headers = HeaderMap::new();
        headers.insert(PRINCIPAL, encoded.parse().unwrap());
        let principal = from_headers(&headers).unwrap();
        assert_eq!(principal.id.as_deref(), Some("abcd"));
        assert_eq!(principal.name.as_deref(), Some("bob@example.com"));
    }

    #[test]
    fn no_headers_means_anonymous() {
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }
}
