//! The `[redis] url`: a direct `redis://[user:password@]host:port[/db]` (checked the way the Redis client reads
//! it), or a Sentinel deployment, `redis+sentinel://[user:password@]host:port[,host:port...]/master_name[/db]`:
//! the sentinels to ask, the name of the monitored primary, and the database. The password (and user) are those
//! of the Redis primary; the sentinels are asked without one. [`redacted_url`] is the form for logs and answers.

/// Where Redis is: one server, or whatever primary the sentinels name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://…` (or `rediss://`, `unix://`, `redis+unix://`): the URL as the client reads it.
    Direct(String),
    /// `redis+sentinel://…`.
    Sentinel(SentinelTarget),
}

/// A Sentinel deployment: the sentinels, the primary's name, and how to log in to the primary.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelTarget {
    /// `host:port` of every sentinel, in the order given (asked in that order).
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    pub master_name: String,
    /// The database on the primary.
    pub db: i64,
    /// The primary's ACL user, when not `default`.
    pub username: Option<String>,
    /// The primary's password.
    pub password: Option<String>,
}

impl std::fmt::Debug for SentinelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelTarget")
            .field("sentinels", &self.sentinels)
            .field("master_name", &self.master_name)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The scheme of a Sentinel URL.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";

/// The default port of a sentinel, when a host names none.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

impl RedisTarget {
    /// Reads a `[redis] url`; the error says what is wrong, without the password.
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        match url.strip_prefix(SENTINEL_SCHEME) {
            Some(rest) => parse_sentinel(rest).map(RedisTarget::Sentinel),
            None => match ::redis::Client::open(url) {
                Ok(_) => Ok(RedisTarget::Direct(url.to_string())),
                Err(e) => Err(format!("`{}` is not a redis:// or {SENTINEL_SCHEME} URL ({e})", redacted_url(url))),
            },
        }
    }
}

fn parse_sentinel(rest: &str) -> Result<SentinelTarget, String> {
    let shown = || format!("{SENTINEL_SCHEME}{}", redacted_rest(rest));
    let (userinfo, rest) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let user = decode(user).map_err(|e| format!("`{}`: the user name {e}", shown()))?;
            let password = decode(password).map_err(|e| format!("`{}`: the password {e}", shown()))?;
            (Some(user).filter(|u| !u.is_empty()), Some(password).filter(|p| !p.is_empty()))
        }
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    if hosts.is_empty() {
        return Err(format!("`{}` names no sentinel (host:port[,host:port...])", shown()));
    }
    let mut sentinels = Vec::new();
    for host in hosts.split(',') {
        sentinels.push(parse_host(host).map_err(|e| format!("`{}`: {e}", shown()))?);
    }
    let mut parts = path.split('/');
    let master_name = parts.next().unwrap_or("");
    if master_name.is_empty() {
        return Err(format!("`{}` names no primary: add `/master_name` after the sentinels", shown()));
    }
    if !master_name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        return Err(format!(
            "`{}`: the primary's name `{master_name}` has characters other than A-Z a-z 0-9 - _ .",
            shown()
        ));
    }
    let db = match parts.next() {
        None | Some("") => 0,
        Some(db) => match db.parse::<i64>() {
            Ok(db) if db >= 0 => db,
            _ => return Err(format!("`{}`: the database `{db}` is not a number from 0", shown())),
        },
    };
    if parts.next().is_some_and(|p| !p.is_empty()) {
        return Err(format!("`{}` has more after /master_name/db", shown()));
    }
    Ok(SentinelTarget { sentinels, master_name: master_name.to_string(), db, username, password })
}

fn parse_host(host: &str) -> Result<(String, u16), String> {
    let host = host.trim();
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (name, after) = v6.split_once(']').ok_or_else(|| format!("`{host}` has an unclosed `[`"))?;
        (name, after.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.is_empty() {
        return Err(format!("a sentinel `{host}` has no host name"));
    }
    let port = match port {
        None => DEFAULT_SENTINEL_PORT,
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port > 0 => port,
            _ => return Err(format!("the sentinel `{host}` has no valid port (1-65535)")),
        },
    };
    Ok((name.to_string(), port))
}

/// Percent-decoding of the user name and password (`%40` for `@`), as in a `redis://` URL.
fn decode(text: &str) -> Result<String, &'static str> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or("has a `%` without two hex digits")?;
            let hex = std::str::from_utf8(hex).map_err(|_| "has a `%` without two hex digits")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "has a `%` without two hex digits")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once decoded")
}

fn redacted_rest(rest: &str) -> String {
    match rest.rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_string(),
    }
}

/// A Redis URL without its password, for logs (`redis://***@host:port`, `redis+sentinel://***@h1:p,h2:p/name`).
pub fn redacted_url(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_direct_url_is_kept_as_the_client_reads_it() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6379/2").unwrap(),
            RedisTarget::Direct("redis://127.0.0.1:6379/2".into())
        );
        let error = RedisTarget::parse("http://:secret@127.0.0.1:6379").unwrap_err();
        assert!(error.contains("is not a redis://"), "{error}");
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn a_sentinel_url_names_sentinels_primary_db_and_credentials() {
        let target =
            RedisTarget::parse("redis+sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380,sentinel-c/mymaster/3").unwrap();
        let RedisTarget::Sentinel(target) = target else { panic!("not a sentinel target") };
        assert_eq!(
            target.sentinels,
            vec![("10.0.0.1".into(), 26379), ("::1".into(), 26380), ("sentinel-c".into(), DEFAULT_SENTINEL_PORT)]
        );
        assert_eq!(target.master_name, "mymaster");
        assert_eq!(target.db, 3);
        assert_eq!(target.username, None);
        assert_eq!(target.password.as_deref(), Some("p@ss"));
        assert!(!format!("{target:?}").contains("p@ss"), "the password is not in Debug");
        let RedisTarget::Sentinel(plain) = RedisTarget::parse("redis+sentinel://h:1/m").unwrap() else { panic!() };
        assert_eq!((plain.db, plain.password, plain.username), (0, None, None));
        let RedisTarget::Sentinel(user) = RedisTarget::parse("redis+sentinel://app:pw@h:1/m/").unwrap() else {
            panic!()
        };
        assert_eq!((user.username.as_deref(), user.password.as_deref(), user.db), (Some("app"), Some("pw"), 0));
    }

    #[test]
    fn malformed_sentinel_urls_say_what_is_wrong_without_the_password() {
        for (url, expected) in [
            ("redis+sentinel://:secret@/mymaster", "names no sentinel"),
            ("redis+sentinel://:secret@h:26379", "names no primary"),
            ("redis+sentinel://:secret@h:26379/", "names no primary"),
            ("redis+sentinel://:secret@h:notaport/m", "no valid port"),
            ("redis+sentinel://:secret@h:0/m", "no valid port"),
            ("redis+sentinel://:secret@h:1,,h:2/m", "has no host name"),
            ("redis+sentinel://:secret@h:1/m/x", "is not a number"),
            ("redis+sentinel://:secret@h:1/m/-1", "is not a number"),
            ("redis+sentinel://:secret@h:1/m/0/more", "has more after"),
            ("redis+sentinel://:secret@h:1/m aster", "has characters other than"),
            ("redis+sentinel://:sec%zzret@h:1/m", "without two hex digits"),
            ("redis+sentinel://:secret@[::1:1/m", "unclosed"),
        ] {
            let error = RedisTarget::parse(url).unwrap_err();
            assert!(error.contains(expected), "{url}: {error}");
            assert!(!error.contains("secret") && !error.contains("sec%"), "{url}: {error}");
        }
    }

    #[test]
    fn the_redacted_form_hides_the_password_of_both_kinds() {
        assert_eq!(redacted_url("redis://:pw@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(redacted_url("redis+sentinel://:pw@a:1,b:2/m/1"), "redis+sentinel://***@a:1,b:2/m/1");
        assert_eq!(redacted_url("redis+sentinel://a:1/m"), "redis+sentinel://a:1/m");
    }
}
