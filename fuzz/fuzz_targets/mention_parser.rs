//! Fuzzes the mention parser: any message, any set of aliases. The parser must not panic,
//! must return a range on char boundaries that starts with '@' and normalizes to a key of
//! the target it reports, and must find every alias written as "@alias" on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use personae::cache::{ProfileCache, ProfileInfo};
use personae::domain::{
    lookup_key, Alias, DisplayName, PersonalityId, PersonalityName, Prompt, UserId,
};
use personae::routing::mention::find_mention;

fuzz_target!(|input: (Vec<String>, String)| {
    let (raw_aliases, content) = input;
    // The bot's cache holds aliases as `Alias::parse` keeps them: one personality each.
    let aliases: Vec<Alias> = raw_aliases
        .iter()
        .take(16)
        .filter_map(|a| Alias::parse(a).ok())
        .collect();
    let cache = ProfileCache::new();
    for (i, alias) in aliases.iter().enumerate() {
        cache.put(ProfileInfo {
            id: PersonalityId::new(),
            name: PersonalityName::parse(&format!("fuzz target {i}")).expect("a valid name"),
            owner_id: UserId::new(1).expect("a valid user id"),
            display_name: DisplayName::parse("Fuzz").expect("a valid display name"),
            avatar_url: None,
            prompt: Prompt::default(),
            model: None,
            aliases: vec![alias.clone()],
            version: 1,
        });
    }

    if let Some(m) = find_mention(&content, &cache) {
        assert!(m.range.start < m.range.end && m.range.end <= content.len());
        assert!(content.is_char_boundary(m.range.start));
        assert!(content.is_char_boundary(m.range.end));
        let text = &content[m.range.clone()];
        assert!(text.starts_with('@'), "{text:?}");
        let key = lookup_key(&text[1..]);
        assert_eq!(cache.lookup_key(&key), Some(m.target), "{text:?} in {content:?}");
        let _ = m.text_without(&content);
    }

    for alias in &aliases {
        let holder = cache.lookup_key(alias.as_str());
        assert!(holder.is_some(), "{alias:?} is not indexed");
        let message = format!("@{alias}");
        let found = find_mention(&message, &cache);
        // A longer alias may start with this one only if it follows after a space, which
        // this message doesn't have: the alias itself must be found.
        assert_eq!(
            found.map(|m| (m.target, m.range)),
            holder.map(|id| (id, 0..message.len())),
            "{message:?}"
        );
    }
});
