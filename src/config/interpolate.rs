//! `${ENV_VAR}` in configuration strings.
//!
//! Secrets belong in the function's environment, not in the file, so every string of the
//! configuration may refer to a variable. Interpolation runs on the *parsed* values (never on the
//! TOML text), so a value holding quotes or newlines cannot change the file's structure.
//!
//! Syntax: `${NAME}` with `NAME` = `[A-Za-z_][A-Za-z0-9_]*`; `$${` is a literal `${`; a `$` not
//! followed by `{` is kept as it is. A variable that is not set is an error naming the variable
//! and where it is used, never a value.

use std::collections::BTreeMap;

use super::{Config, Problem};
use crate::redact::Secret;

/// Looks a variable up (the process environment in production, a map in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands every `${VAR}` in `text`. On failure, says which variable (or what syntax) is wrong.
pub fn expand(text: &str, lookup: Lookup<'_>) -> Result<String, String> {
    if !text.contains('$') {
        return Ok(text.to_owned());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let Some(end) = tail.find('}') else {
                return Err("`${` without a closing `}` (write `$${` for a literal `${`)".to_owned());
            };
            let name = &tail[..end];
            if !is_var_name(name) {
                return Err(format!(
                    "`${{{}}}` is not a variable reference: names are letters, digits and `_` \
                     (write `$${{` for a literal `${{`)",
                    crate::text::truncate_chars(name, 40)
                ));
            }
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What interpolating a configuration found.
#[derive(Debug, Default)]
pub struct Interpolated {
    /// One per string that could not be expanded (a variable not set, a malformed `${`).
    pub problems: Vec<Problem>,
    /// `$NAME` without braces, which is kept as it is: almost always a `${NAME}` mistyped.
    pub warnings: Vec<Problem>,
}

/// The environment variables `config`'s strings refer to (`${NAME}`), whether set or not: what a
/// deployment must provide (`check-config --print-env`).
pub fn variables(config: &Config) -> std::collections::BTreeSet<String> {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let record = |name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        Some(String::new())
    };
    interpolate_config(&mut config.clone(), &record);
    asked.into_inner()
}

/// The first `$NAME` (a `$` followed by a letter or `_`, not `${` or `$${`) in `text`.
fn bare_reference(text: &str) -> Option<&str> {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail.strip_prefix('{').unwrap_or(tail);
            continue;
        }
        let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
        if end > 0 && is_var_name(&after[..end]) {
            return Some(&after[..end]);
        }
        rest = after;
    }
    None
}

/// Expands every string of `config` in place.
pub fn interpolate_config(config: &mut Config, lookup: Lookup<'_>) -> Interpolated {
    let mut run = Run { lookup, found: Interpolated::default() };
    let auth = &mut config.auth;
    run.opt_string(&mut auth.callback_url, "auth.callback_url");
    run.opt_secret(&mut auth.key, "auth.key");
    run.opt_secret(&mut auth.previous_key, "auth.previous_key");
    run.opt_secret(&mut auth.ims_key, "auth.ims_key");
    run.opt_secret(&mut auth.ims_previous_key, "auth.ims_previous_key");
    let key = config.store_key;
    run.opt_secret(&mut config.store.url, &key.at("url"));
    run.string(&mut config.store.key_prefix, &key.at("key_prefix"));
    for (i, channel) in config.channels.iter_mut().enumerate() {
        // The name first: later locations mention it.
        run.string(&mut channel.name, &format!("channels[{i}].name"));
        let at = super::channel_location(i, &channel.name);
        if let Some(url) = channel.service.url_mut() {
            run.opt_secret(url, &format!("{at}.url"));
        }
        if let Some(secret) = channel.service.secret_mut() {
            run.opt_secret(secret, &format!("{at}.secret"));
        }
        match &mut channel.service {
            super::Service::Webhook(hook) => run.map_values(&mut hook.headers, &format!("{at}.headers")),
            super::Service::Feishu(feishu) => run.opt_string(&mut feishu.msg_type, &format!("{at}.msg_type")),
            _ => {}
        }
        run.opt_string(&mut channel.template, &format!("{at}.template"));
        run.mentions(&mut channel.mention, &format!("{at}.mention"));
    }
    for (i, route) in config.routes.iter_mut().enumerate() {
        run.string(&mut route.name, &format!("routes[{i}].name"));
        let at = super::route_location(i, &route.name);
        run.map_values(&mut route.match_fields, &format!("{at}.match"));
        for (j, matcher) in route.matchers.iter_mut().enumerate() {
            run.string(matcher, &format!("{at}.matchers[{j}]"));
        }
        for (j, channel) in route.channels.iter_mut().enumerate() {
            run.string(channel, &format!("{at}.channels[{j}]"));
        }
        run.opt_string(&mut route.template, &format!("{at}.template"));
        run.mentions(&mut route.mention, &format!("{at}.mention"));
    }
    run.found
}

struct Run<'a> {
    lookup: Lookup<'a>,
    found: Interpolated,
}

impl Run<'_> {
    fn string(&mut self, value: &mut String, at: &str) {
        if let Some(name) = bare_reference(value) {
            let message =
                format!("`${name}` is kept as it is: write `${{{name}}}` to read the environment variable");
            self.found.warnings.push(Problem::new(at, message));
        }
        match expand(value, self.lookup) {
            Ok(expanded) => *value = expanded,
            Err(message) => self.found.problems.push(Problem::new(at, message)),
        }
    }

    fn opt_string(&mut self, value: &mut Option<String>, at: &str) {
        if let Some(value) = value {
            self.string(value, at);
        }
    }

    fn opt_secret(&mut self, value: &mut Option<Secret>, at: &str) {
        if let Some(secret) = value {
            if bare_reference(secret.expose()).is_some() {
                // The name is not quoted: it could be part of a real secret.
                let message = "holds `$` and a name, kept as they are: to read an environment variable, write `${NAME}`";
                self.found.warnings.push(Problem::new(at, message));
            }
            match expand(secret.expose(), self.lookup) {
                Ok(expanded) => *secret = Secret::new(expanded),
                Err(message) => self.found.problems.push(Problem::new(at, message)),
            }
        }
    }

    fn mentions(&mut self, mentions: &mut super::Mentions, at: &str) {
        for (key, ids) in [
            ("mobiles", &mut mentions.mobiles),
            ("user_ids", &mut mentions.user_ids),
            ("groups", &mut mentions.groups),
        ] {
            for (i, id) in ids.iter_mut().enumerate() {
                self.string(id, &format!("{at}.{key}[{i}]"));
            }
        }
    }

    fn map_values(&mut self, map: &mut BTreeMap<String, String>, at: &str) {
        for (key, value) in map.iter_mut() {
            self.string(value, &format!("{at}.{key}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc\"def".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_and_keeps_other_dollars() {
        assert_eq!(expand("a=${TOKEN}&b", &env).unwrap(), "a=abc\"def&b");
        assert_eq!(expand("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand("cost: $5, $x, $", &env).unwrap(), "cost: $5, $x, $");
        assert_eq!(expand("no dollars", &env).unwrap(), "no dollars");
        assert_eq!(expand("猫${TOKEN}猫", &env).unwrap(), "猫abc\"def猫");
    }

    #[test]
    fn a_bare_dollar_name_is_found_but_not_escapes_or_prices() {
        assert_eq!(bare_reference("token=$DINGTALK_TOKEN&x"), Some("DINGTALK_TOKEN"));
        assert_eq!(bare_reference("a ${TOKEN} b"), None);
        assert_eq!(bare_reference("$${NOT} $$x"), None);
        assert_eq!(bare_reference("costs $5 or $"), None);
        assert_eq!(bare_reference("$_x"), Some("_x"));
    }

    #[test]
    fn double_dollar_escapes() {
        assert_eq!(expand("$${TOKEN}", &env).unwrap(), "${TOKEN}");
        assert_eq!(expand("$$${TOKEN}", &env).unwrap(), "$${TOKEN}");
        assert_eq!(expand("a $${ b", &env).unwrap(), "a ${ b");
    }

    #[test]
    fn errors_name_the_variable_never_a_value() {
        let err = expand("x ${MISSING_ONE} y", &env).unwrap_err();
        assert!(err.contains("MISSING_ONE"), "{err}");
        assert!(expand("${TOKEN", &env).unwrap_err().contains("closing"));
        assert!(expand("${a-b}", &env).unwrap_err().contains("not a variable reference"));
        assert!(expand("${}", &env).is_err());
    }

    proptest::proptest! {
        #[test]
        fn expansion_never_panics(text in "[a-z$${}_A-Z]{0,40}") {
            let _ = expand(&text, &env);
        }
    }
}
