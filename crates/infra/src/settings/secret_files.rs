//! Secrets from files: `DATABASE_URL_FILE`, `DATABASE_READ_URL_FILE`,
//! `AMQP_URL_FILE`, `OBJECTSYNC__AMQP__URLS_FILE`,
//! `OBJECTSYNC__ADMIN__TOKEN_FILE` and
//! `OBJECTSYNC__DATABASE__APP_PASSWORD_FILE` name a file holding the value,
//! the way Docker and Kubernetes mount secrets (`/run/secrets/…`), so that
//! a secret need not sit in the environment, where `ps e` and crash
//! reports see it.

use std::collections::HashMap;
use std::path::PathBuf;

/// Suffix of a variable that names a file holding another's value.
const FILE_SUFFIX: &str = "_FILE";

/// The variables that may come from a file instead.
pub(super) const SECRET_VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_READ_URL",
    "AMQP_URL",
    "OBJECTSYNC__AMQP__URLS",
    "OBJECTSYNC__ADMIN__TOKEN",
    "OBJECTSYNC__DATABASE__APP_PASSWORD",
];

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// Both ways of giving one secret: which one is meant is anybody's guess.
    #[error("configuration: {var} and {var}_FILE are both set; set only one of them")]
    BothSet { var: &'static str },
    #[error("configuration: {var}_FILE: cannot read {}: {source}", .path.display())]
    Unreadable {
        var: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An empty file is a mounting mistake more often than a wish for no
    /// value (which leaving the variable out expresses).
    #[error("configuration: {var}_FILE: {} is empty", .path.display())]
    Empty { var: &'static str, path: PathBuf },
}

/// The value of `var`: the variable itself if set and not empty, else the
/// content of the file `var_FILE` names, less its trailing line ending.
pub(super) fn secret(
    env: &HashMap<String, String>,
    var: &'static str,
) -> Result<Option<String>, SecretFileError> {
    let set = |name: &str| env.get(name).filter(|v| !v.is_empty());
    let direct = set(var);
    let file = set(&format!("{var}{FILE_SUFFIX}"));
    match (direct, file) {
        (Some(_), Some(_)) => Err(SecretFileError::BothSet { var }),
        (Some(value), None) => Ok(Some(value.clone())),
        (None, None) => Ok(None),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let content =
                std::fs::read_to_string(&path).map_err(|source| SecretFileError::Unreadable {
                    var,
                    path: path.clone(),
                    source,
                })?;
            let value = content
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&content);
            if value.is_empty() {
                return Err(SecretFileError::Empty { var, path });
            }
            Ok(Some(value.to_owned()))
        }
    }
}

/// The environment less the `_FILE` variables, so that the
/// `OBJECTSYNC__…` layer does not take `ADMIN__TOKEN_FILE` for a setting.
pub(super) fn without_file_variables(mut env: HashMap<String, String>) -> HashMap<String, String> {
    for var in SECRET_VARIABLES {
        env.remove(&format!("{var}{FILE_SUFFIX}"));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::env;
    use crate::settings::{Role, Settings, SettingsError};
    use secrecy::ExposeSecret;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir()
                .join(format!("objectsync-secrets-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self, name: &str, content: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, content).unwrap();
            path.display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn every_secret_can_come_from_a_file_less_its_trailing_newline() {
        let dir = TempDir::new("read");
        let db = dir.file("db", "postgres://u:pw@db:5432/prod?sslmode=require\n");
        let standby = dir.file("standby", "postgres://u:pw@standby:5432/prod\n");
        let mq = dir.file("mq", "amqps://u:pw@mq:5671/%2f\r\n");
        let token = dir.file("token", "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken");
        let app = dir.file("app", "app-pa55word\n");
        let s = Settings::load_from(
            Role::Ingest,
            None,
            env(&[
                ("DATABASE_URL_FILE", &db),
                ("DATABASE_READ_URL_FILE", &standby),
                ("AMQP_URL_FILE", &mq),
                ("OBJECTSYNC__ADMIN__TOKEN_FILE", &token),
                ("OBJECTSYNC__DATABASE__APP_PASSWORD_FILE", &app),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.database.url.expose_secret(),
            "postgres://u:pw@db:5432/prod?sslmode=require"
        );
        assert_eq!(
            s.database.read_url.as_ref().map(|u| u.expose_secret()),
            Some("postgres://u:pw@standby:5432/prod")
        );
        assert_eq!(s.amqp.urls[0].expose_secret(), "amqps://u:pw@mq:5671/%2f");
        assert_eq!(
            s.admin.token.as_ref().map(|t| t.expose_secret()),
            Some("t0ken-t0ken-t0ken-t0ken-t0ken-t0ken")
        );
        assert_eq!(
            s.database.app_password.as_ref().map(|p| p.expose_secret()),
            Some("app-pa55word")
        );
    }

    #[test]
    fn a_variable_and_its_file_both_set_is_an_error_naming_both() {
        let dir = TempDir::new("both");
        let token = dir.file("token", "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken\n");
        for (var, value) in [
            ("DATABASE_URL", "postgres://db/x"),
            ("DATABASE_READ_URL", "postgres://standby/x"),
            ("AMQP_URL", "amqp://mq/%2f"),
            (
                "OBJECTSYNC__ADMIN__TOKEN",
                "t0ken-t0ken-t0ken-t0ken-t0ken-t0ken",
            ),
            ("OBJECTSYNC__DATABASE__APP_PASSWORD", "app-pa55word"),
        ] {
            let file_var = format!("{var}_FILE");
            let e = Settings::load_from(
                Role::Worker,
                None,
                env(&[(var, value), (&file_var, &token)]),
            )
            .unwrap_err();
            assert!(
                matches!(
                    e,
                    SettingsError::SecretFile(SecretFileError::BothSet { .. })
                ),
                "{e}"
            );
            let shown = e.to_string();
            assert!(
                shown.contains(&format!("{var} and {file_var} are both set")),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_the_file() {
        let dir = TempDir::new("bad");
        let empty = dir.file("empty", "\n");
        let missing = dir.0.join("missing").display().to_string();
        for (path, says) in [(&empty, "is empty"), (&missing, "cannot read")] {
            let e = Settings::load_from(Role::Ingest, None, env(&[("DATABASE_URL_FILE", path)]))
                .unwrap_err();
            let shown = e.to_string();
            assert!(shown.contains("DATABASE_URL_FILE"), "{shown}");
            assert!(shown.contains(path.as_str()), "{shown}");
            assert!(shown.contains(says), "{shown}");
        }
    }
}
