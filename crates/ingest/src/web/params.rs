//! Query-string parameters, parsed by hand so that every bad value gets a
//! `400` naming the parameter rather than a framework's plain-text error.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use objectsync_model::ApiCode;
use objectsync_store::processes::Order;

use crate::error::ApiError;

/// The query string as name/value pairs, repeated names kept.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(format!("malformed query string: {e}")))?;
        Ok(Self(pairs))
    }
}

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, for repeatable parameters.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// An integer in `min..=max`; `default` when absent (required if `None`).
    /// Values above `max` get `over_max` as their code.
    pub fn int(
        &self,
        name: &str,
        default: Option<i64>,
        min: i64,
        max: i64,
        over_max: ApiCode,
    ) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return default.ok_or_else(|| {
                ApiError::new(
                    ApiCode::MissingParameter,
                    format!("query parameter '{name}' is required"),
                )
            });
        };
        let value: i64 = raw
            .parse()
            .map_err(|_| ApiError::invalid(format!("'{name}' must be an integer, got '{raw}'")))?;
        if value > max {
            return Err(ApiError::new(
                over_max,
                format!("'{name}' must be at most {max}, got {value}"),
            ));
        }
        if value < min {
            return Err(ApiError::invalid(format!(
                "'{name}' must be at least {min}, got {value}"
            )));
        }
        Ok(value)
    }

    /// `sort=asc|desc`, default `desc`.
    pub fn sort(&self) -> Result<Order, ApiError> {
        match self.get("sort") {
            None | Some("desc") => Ok(Order::Desc),
            Some("asc") => Ok(Order::Asc),
            Some(other) => Err(ApiError::invalid(format!(
                "'sort' must be asc or desc, got '{other}'"
            ))),
        }
    }

    /// `name=true|false`, default false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::invalid(format!(
                "'{name}' must be true or false, got '{other}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn integers_with_bounds() {
        let p = params(&[("limit", "20"), ("bad", "x"), ("big", "51"), ("neg", "-1")]);
        let code = ApiCode::OutOfRange;
        assert_eq!(p.int("limit", Some(10), 1, 50, code).unwrap(), 20);
        assert_eq!(p.int("absent", Some(10), 1, 50, code).unwrap(), 10);
        assert_eq!(
            p.int("absent", None, 1, 50, code).unwrap_err().code,
            ApiCode::MissingParameter
        );
        assert_eq!(
            p.int("bad", Some(1), 1, 50, code).unwrap_err().code,
            ApiCode::InvalidParameter
        );
        assert_eq!(p.int("big", Some(1), 1, 50, code).unwrap_err().code, code);
        assert_eq!(
            p.int("neg", Some(1), 0, 50, code).unwrap_err().code,
            ApiCode::InvalidParameter
        );
    }

    #[test]
    fn sort_and_flags() {
        assert_eq!(params(&[]).sort().unwrap(), Order::Desc);
        assert_eq!(params(&[("sort", "asc")]).sort().unwrap(), Order::Asc);
        assert!(params(&[("sort", "up")]).sort().is_err());
        assert!(params(&[("a", "true")]).flag("a").unwrap());
        assert!(params(&[("a", "yes")]).flag("a").is_err());
    }
}
