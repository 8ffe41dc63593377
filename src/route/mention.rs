//! Who a route's messages mention on each of its channels: the channel's own `mention`, and the
//! route's added on the channels whose service can write each kind. Resolved once, when the
//! routes are compiled, so that a message only looks its list up.

use crate::channel;
use crate::config::{ChannelConfig, Findings, Mentions, Problem, RouteConfig};

/// Per channel of the route (the same order as `channels`): everyone its messages mention.
/// Route entries some channels cannot write are warnings naming them; an entry none of them
/// can write is a problem.
pub(super) fn resolve(
    route: &RouteConfig,
    at: &str,
    channels: &[&ChannelConfig],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Vec<Mentions> {
    let at = format!("{at}.mention");
    let mut findings = Findings::default();
    route.mention.check(&at, &mut findings);
    problems.extend(findings.problems);
    for key in route.mention.keys() {
        let (can, cannot): (Vec<&ChannelConfig>, Vec<&ChannelConfig>) =
            channels.iter().partition(|c| channel::mention_keys(c).contains(&key));
        let place = format!("{at}.{}", key.as_str());
        let skipped: Vec<String> =
            cannot.iter().map(|c| format!("{:?} ({})", c.name, channel::cannot_mention(c, key))).collect();
        if can.is_empty() && !cannot.is_empty() {
            problems.push(Problem::new(
                place,
                format!("no channel of the route can write it: {}", skipped.join("; ")),
            ));
        } else if !cannot.is_empty() {
            warnings.push(Problem::new(place, format!("skipped on {}", skipped.join("; "))));
        }
    }
    channels
        .iter()
        .map(|c| {
            let mut mentions = c.mention.clone();
            mentions.add(&route.mention.only(channel::mention_keys(c)));
            mentions
        })
        .collect()
}
