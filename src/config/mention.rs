//! `mention = { mobiles = [...], user_ids = [...], groups = [...], all = false }`: the people a
//! channel's messages (or a route's) mention. The ids are opaque to vodhook (each service has its
//! own form: `U…` on Slack, `ou_…` on Feishu, any userid on DingTalk and WeCom); what is checked
//! here is only what would let an id break out of the mention the service writes around it:
//! emptiness, whitespace and markup characters. Which service can write which key is each
//! service's own knowledge (`channel::mention_keys`).

use serde::{Deserialize, Serialize};

use super::Findings;

/// The kinds of mention a configuration can ask for: the keys of a `mention` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MentionKey {
    Mobiles,
    UserIds,
    Groups,
    All,
}

impl MentionKey {
    pub const ALL: [MentionKey; 4] =
        [MentionKey::Mobiles, MentionKey::UserIds, MentionKey::Groups, MentionKey::All];

    pub fn as_str(self) -> &'static str {
        match self {
            MentionKey::Mobiles => "mobiles",
            MentionKey::UserIds => "user_ids",
            MentionKey::Groups => "groups",
            MentionKey::All => "all",
        }
    }
}

/// Who a message mentions. Serialised with every key (`plan` shows it, webhook documents carry
/// it), so a reader never guesses what an absent key means.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mentions {
    /// Phone numbers (DingTalk).
    #[serde(default)]
    pub mobiles: Vec<String>,
    /// Each service's own user ids.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// User-group ids (Slack `S…`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Everyone in the group (`@all`, `<!channel>`).
    #[serde(default)]
    pub all: bool,
}

/// Characters an id may not hold: whitespace and control characters, and what one of the
/// services reads as markup around or inside a mention (`<@U1>`, `<at id=x></at>`, `@13800…`).
fn is_markup(c: char) -> bool {
    c.is_whitespace() || c.is_control() || "<>@!&|*`[](){}\"'\\^#~=/,;".contains(c)
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        !self.all && self.mobiles.is_empty() && self.user_ids.is_empty() && self.groups.is_empty()
    }

    /// Whether `key` asks for anyone.
    pub fn has(&self, key: MentionKey) -> bool {
        match key {
            MentionKey::Mobiles => !self.mobiles.is_empty(),
            MentionKey::UserIds => !self.user_ids.is_empty(),
            MentionKey::Groups => !self.groups.is_empty(),
            MentionKey::All => self.all,
        }
    }

    /// The keys that ask for anyone.
    pub fn keys(&self) -> impl Iterator<Item = MentionKey> + '_ {
        MentionKey::ALL.into_iter().filter(|k| self.has(*k))
    }

    /// Adds everyone `other` names, each once, keeping the order they were first named in.
    pub fn add(&mut self, other: &Mentions) {
        for (mine, theirs) in [
            (&mut self.mobiles, &other.mobiles),
            (&mut self.user_ids, &other.user_ids),
            (&mut self.groups, &other.groups),
        ] {
            for id in theirs {
                if !mine.contains(id) {
                    mine.push(id.clone());
                }
            }
        }
        self.all |= other.all;
    }

    /// Only the kinds in `keys`: what a service that can write those keeps of a route's list.
    pub fn only(&self, keys: &[MentionKey]) -> Mentions {
        let keep = |key| keys.contains(&key);
        Mentions {
            mobiles: if keep(MentionKey::Mobiles) { self.mobiles.clone() } else { Vec::new() },
            user_ids: if keep(MentionKey::UserIds) { self.user_ids.clone() } else { Vec::new() },
            groups: if keep(MentionKey::Groups) { self.groups.clone() } else { Vec::new() },
            all: keep(MentionKey::All) && self.all,
        }
    }

    /// The ids' own rules; `at` is the `mention` table's place (`channels[0] "ops".mention`).
    pub fn check(&self, at: &str, f: &mut Findings) {
        for (key, ids) in [("mobiles", &self.mobiles), ("user_ids", &self.user_ids), ("groups", &self.groups)]
        {
            for (i, id) in ids.iter().enumerate() {
                let place = format!("{at}.{key}[{i}]");
                if id.is_empty() {
                    f.problem(place, "is empty: write the id, or remove the entry");
                } else if let Some(c) = id.chars().find(|c| is_markup(*c)) {
                    f.problem(
                        place,
                        format!(
                            "{:?} holds {c:?}: ids are written as the service shows them (letters, digits, `_`, \
                             `-`, `.`, `+`), without markup or spaces",
                            crate::text::truncate_chars(id, 40)
                        ),
                    );
                }
            }
        }
        if key_is(&self.mobiles, |m| {
            !m.trim_start_matches('+').chars().all(|c| c.is_ascii_digit() || c == '-')
        }) {
            f.problem(
                format!("{at}.mobiles"),
                "holds something other than a phone number (digits, `+`, `-`)",
            );
        }
    }
}

fn key_is(ids: &[String], bad: impl Fn(&str) -> bool) -> bool {
    ids.iter().any(|id| !id.is_empty() && !id.chars().any(is_markup) && bad(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(user_ids: &[&str]) -> Mentions {
        Mentions { user_ids: user_ids.iter().map(|s| (*s).to_owned()).collect(), ..Mentions::default() }
    }

    #[test]
    fn add_names_each_person_once_in_first_order() {
        let mut a = of(&["u1", "u2"]);
        a.add(&of(&["u2", "u3"]));
        a.add(&Mentions { all: true, mobiles: vec!["138".into()], ..Mentions::default() });
        assert_eq!(a.user_ids, ["u1", "u2", "u3"]);
        assert_eq!(a.mobiles, ["138"]);
        assert!(a.all);
    }

    #[test]
    fn only_keeps_the_kinds_a_service_writes() {
        let m =
            Mentions { mobiles: vec!["138".into()], user_ids: vec!["u".into()], groups: vec![], all: true };
        let slack = m.only(&[MentionKey::UserIds, MentionKey::Groups, MentionKey::All]);
        assert_eq!(slack, Mentions { user_ids: vec!["u".into()], all: true, ..Mentions::default() });
        assert!(m.only(&[]).is_empty());
    }

    #[test]
    fn ids_with_markup_or_nothing_are_refused_by_place() {
        let m = Mentions {
            mobiles: vec!["1380000000x".into(), "+86-13800000000".into()],
            user_ids: vec![String::new(), "<@all>".into(), "ou_ok-1.2".into()],
            groups: vec!["S 1".into()],
            all: false,
        };
        let mut f = Findings::default();
        m.check("c.mention", &mut f);
        let problems: Vec<String> = f.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("c.mention.user_ids[0]: is empty"), "{problems:#?}");
        assert!(problems[1].starts_with("c.mention.user_ids[1]: \"<@all>\" holds '<'"), "{problems:#?}");
        assert!(problems[2].starts_with("c.mention.groups[0]: \"S 1\" holds ' '"), "{problems:#?}");
        assert!(problems[3].starts_with("c.mention.mobiles: holds something other"), "{problems:#?}");
    }
}
