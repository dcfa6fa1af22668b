//! Property tests of the value objects and the mention parser: arbitrary input never panics,
//! normalization is idempotent, every accepted value is a fixed point of its parser and
//! round-trips through JSON, the database and a restart unchanged, and a message that
//! writes an alias after an '@' finds it.
//!
//! `PROPTEST_CASES=<n>` raises the number of cases of every property (the database ones run
//! a tenth of that, at least 64).

use std::collections::BTreeSet;
use std::fmt::Debug;

use personae::application::{ProfileUpdate, Registration, ServiceError};
use personae::cache::{ProfileCache, ProfileInfo};
use personae::domain::{
    lookup_key, Alias, AvatarUrl, DisplayName, DomainError, ModelName, Personality, PersonalityId,
    PersonalityName, Prompt,
};
use personae::routing::mention::find_mention;
use personae_testkit::plain_index::PlainIndex;
use personae_testkit::{alice, spawn_app, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde::de::DeserializeOwned;
use serde::Serialize;

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Characters that have broken text handling somewhere: every kind of whitespace, combining
/// marks (with different combining classes), compatibility forms, case mappings that change
/// length, invisible and bidi characters, controls, and the punctuation the parsers look at.
const TRICKY: &[char] = &[
    'a', 'Z', 'e', '0', '9', ' ', ' ', '\t', '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{A0}',
    '\u{2003}', '\u{3000}', '@', '@', '-', '_', '.', ',', '<', '/', ':', '!', '\'', '"', '(', ')',
    '#', '?', 'é', '\u{0301}', '\u{0307}', '\u{0308}', '\u{0316}', '\u{05B0}', '\u{0345}',
    '\u{037A}', '\u{00B4}', 'İ', 'ı', 'ß', 'ẞ', 'Σ', 'ς', 'ﬁ', 'Ａ', 'ｚ', '１', '½', '①', '⑴',
    'ǅ', 'Ω', '\u{2126}', '\u{212A}', 'Ⅻ', 'ⓐ', 'ᾈ', '日', '本', 'ㄱ', '가', '\u{1100}',
    '\u{1161}', '\u{093F}', 'क', '\u{200B}', '\u{200C}', '\u{200D}', '\u{202E}', '\u{2066}',
    '\u{FEFF}', '\u{00AD}', '\u{0000}', '\u{007F}', '🦀', '👩', '\u{FE0F}',
];

fn tricky_text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TRICKY), 0..=max)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Any text: arbitrary Unicode, printable Unicode, or a dense mix of tricky characters.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "\\PC{0,60}", tricky_text(30)]
}

fn name_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 _-]{1,66}",
        "[\\p{L}\\p{N} _-]{1,66}",
        tricky_text(20),
        any_text(),
    ]
}

fn alias_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "@?[a-zA-Z0-9_-]{1,10}( {1,3}[a-zA-Z0-9]{1,8}){0,2}",
        " ?[a-zA-Z]{1,5}([ \t\n\r\u{B}\u{C}\u{A0}\u{3000}]{1,2}[a-zA-Z0-9]{1,5}){0,2} ?",
        "[\\p{L}\\p{N}\\p{M} _-]{1,52}",
        tricky_text(14),
        any_text(),
    ]
}

fn display_name_like() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,85}", tricky_text(20), any_text()]
}

fn avatar_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "https?://[a-zA-Z0-9.-]{1,20}(:[0-9]{1,5})?(/[a-zA-Z0-9._~%!$&'()*+,;=:@/?#-]{0,40})?",
        "[a-z]{1,8}:[\\PC]{0,30}",
        tricky_text(12),
        any_text(),
    ]
}

fn prompt_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "(\\PC|\n|\t|\r){0,200}",
        "[a-z]{5995,6005}",
        tricky_text(40),
        any_text(),
    ]
}

fn model_like() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z0-9._:/-]{1,104}", tricky_text(10), any_text()]
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Pure properties: many cases, no regression files written into the source tree.
fn pure_config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(1024),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Properties that write to a database: fewer cases, all on one application.
fn database_config() -> ProptestConfig {
    ProptestConfig {
        cases: (cases(1024) / 10).max(64),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Regressions: normalization must be a fixed point, wherever it runs
// ---------------------------------------------------------------------------------------

#[test]
fn aliases_that_lowercasing_denormalizes_are_fixed_points() {
    for input in ["Ω\u{345}\u{301}", "İ\u{5B0}", "Ⅻ\u{307}\u{5B0}"] {
        // Refused (a lone combining mark is not a letter) or a fixed point: never in between.
        let Ok(alias) = Alias::parse(input) else {
            continue;
        };
        assert_eq!(
            Alias::parse(alias.as_str()).unwrap(),
            alias,
            "{input:?} → {alias:?}"
        );
    }
    let name = PersonalityName::parse("İ\u{5B0}").unwrap();
    assert_eq!(lookup_key(&name.key()), name.key());
}

/// Regression: the alias typed as "Ω\u{345}\u{301}" used to be stored under a key that
/// read back as another alias, so it could not be removed and `events verify` disagreed.
#[tokio::test]
async fn an_alias_that_normalizes_differently_when_read_back_can_be_removed() {
    let t = spawn_app().await;
    let typed = "Ω\u{345}\u{301}";
    let created = t.create("Holder", alice(), &[typed]).await;
    let read = t
        .app
        .service
        .get(Some(personae_testkit::home()), "Holder")
        .await
        .unwrap();
    assert_eq!(
        read.aliases(),
        created.aliases(),
        "the alias reads back as stored"
    );
    let removed = t
        .app
        .service
        .remove_alias(&t.as_user(alice()), "Holder", typed)
        .await;
    assert!(removed.is_ok(), "removing the alias as typed: {removed:?}");
    assert!(
        t.app
            .service
            .get(Some(personae_testkit::home()), typed)
            .await
            .is_err(),
        "the alias is free"
    );
    let report = t.app.service.verify().await.unwrap();
    assert!(report.is_ok(), "{:?}", report.mismatches);
}

// ---------------------------------------------------------------------------------------
// Value objects: no panic, fixed points, JSON
// ---------------------------------------------------------------------------------------

/// Whatever `input` is, parsing doesn't panic; an accepted value parses to itself and
/// survives JSON (the events table) unchanged.
fn accepted_values_are_fixed_points<T>(
    parse: fn(&str) -> Result<T, DomainError>,
    as_str: fn(&T) -> &str,
    input: &str,
) -> Result<(), TestCaseError>
where
    T: PartialEq + Clone + Debug + Serialize + DeserializeOwned,
{
    let Ok(value) = parse(input) else {
        return Ok(());
    };
    prop_assert_eq!(
        parse(as_str(&value)),
        Ok(value.clone()),
        "input {:?}",
        input
    );
    let json = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&json).map_err(|e| {
        TestCaseError::fail(format!("{input:?} → {json}: does not deserialize: {e}"))
    })?;
    prop_assert_eq!(back, value);
    Ok(())
}

proptest! {
    #![proptest_config(pure_config())]

    #[test]
    fn personality_names_never_panic_and_are_fixed_points(input in name_like()) {
        accepted_values_are_fixed_points(PersonalityName::parse, PersonalityName::as_str, &input)?;
        if let Ok(name) = PersonalityName::parse(&input) {
            // The key is what uniqueness and look-ups use: typing the key finds the name.
            prop_assert_eq!(lookup_key(&name.key()), name.key(), "input {:?}", input);
        }
    }

    #[test]
    fn aliases_never_panic_and_are_fixed_points(input in alias_like()) {
        accepted_values_are_fixed_points(Alias::parse, Alias::as_str, &input)?;
        if let Ok(alias) = Alias::parse(&input) {
            prop_assert_eq!(lookup_key(alias.as_str()), alias.as_str());
        }
    }

    #[test]
    fn display_names_never_panic_and_are_fixed_points(input in display_name_like()) {
        accepted_values_are_fixed_points(DisplayName::parse, DisplayName::as_str, &input)?;
    }

    #[test]
    fn avatar_urls_never_panic_and_are_fixed_points(input in avatar_like()) {
        accepted_values_are_fixed_points(AvatarUrl::parse, AvatarUrl::as_str, &input)?;
    }

    #[test]
    fn prompts_never_panic_and_are_kept_exactly(input in prompt_like()) {
        accepted_values_are_fixed_points(Prompt::parse, Prompt::as_str, &input)?;
        if let Ok(prompt) = Prompt::parse(&input) {
            prop_assert_eq!(prompt.as_str(), input.as_str());
        }
    }

    #[test]
    fn model_names_never_panic_and_are_fixed_points(input in model_like()) {
        accepted_values_are_fixed_points(ModelName::parse, ModelName::as_str, &input)?;
    }

    /// Regression: "İ\u{316}" and "Ω\u{345}\u{301}" used to normalize differently twice.
    #[test]
    fn lookup_key_is_idempotent(input in any_text()) {
        let once = lookup_key(&input);
        prop_assert_eq!(lookup_key(&once), once.clone(), "input {:?}", input);
    }
}

// ---------------------------------------------------------------------------------------
// Value objects through the database
// ---------------------------------------------------------------------------------------

/// The fields a restart must not change.
fn same_personality(a: &Personality, b: &Personality) -> bool {
    a.id() == b.id()
        && a.name() == b.name()
        && a.owner_id() == b.owner_id()
        && a.profile() == b.profile()
        && a.aliases() == b.aliases()
        && a.version() == b.version()
}

/// Runs `property` on one application for every case, then restarts the application and
/// checks that every personality a case stored reads back unchanged, and that the stored
/// state still equals the fold of the events.
fn on_one_app<S, F>(name: &str, strategy: S, property: F)
where
    S: Strategy,
    S::Value: Debug,
    F: Fn(&TestApp, usize, S::Value) -> Result<Option<Personality>, TestCaseError>,
{
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t = rt.block_on(spawn_app());
    // What the cases stored, to compare again after the restart.
    let stored = std::cell::RefCell::new(Vec::new());
    let counter = std::cell::Cell::new(0usize);
    let mut runner = TestRunner::new(database_config());
    let result = runner.run(&strategy, |value| {
        counter.set(counter.get() + 1);
        let _guard = rt.enter();
        if let Some(p) = property(&t, counter.get(), value)? {
            stored.borrow_mut().push(p);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    let stored = stored.into_inner();
    rt.block_on(async {
        let t = t.restart().await;
        for expected in &stored {
            let read = t.app.service.get_by_id(expected.id()).await.unwrap();
            let read = read.unwrap_or_else(|| panic!("{name}: {} lost", expected.name()));
            assert!(
                same_personality(&read, expected),
                "{name}: after a restart\n  stored {expected:?}\n  read   {read:?}"
            );
        }
        let report = t.app.service.verify().await.unwrap();
        assert!(report.is_ok(), "{name}: {:?}", report.mismatches);
        t.app.shutdown().await;
    });
}

/// Blocks on a future inside a property (the runtime was entered by `on_one_app`).
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(f)
}

/// Reads the personality back by id and by `reference`, and checks it equals `expected`.
fn read_back(t: &TestApp, expected: &Personality, reference: &str) -> Result<(), TestCaseError> {
    let by_id = block(t.app.service.get_by_id(expected.id())).unwrap();
    prop_assert!(by_id.is_some(), "{:?} not stored", expected.name());
    let by_id = by_id.unwrap();
    prop_assert!(
        same_personality(&by_id, expected),
        "stored {:?}\nread {:?}",
        expected,
        by_id
    );
    let by_reference = block(t.app.service.get(Some(personae_testkit::home()), reference));
    prop_assert_eq!(
        by_reference.map(|p| p.id()).ok(),
        Some(expected.id()),
        "get({:?})",
        reference
    );
    Ok(())
}

#[test]
fn accepted_names_round_trip_through_the_database() {
    on_one_app("names", name_like(), |t, _, input| {
        let Ok(name) = PersonalityName::parse(&input) else {
            return Ok(None);
        };
        let registration = Registration {
            name: input.clone(),
            owner_id: Some(alice()),
            display_name: Some("Someone".into()),
            ..Default::default()
        };
        match block(
            t.app
                .service
                .register(&personae_testkit::cli_ctx(), registration),
        ) {
            Ok(p) => {
                prop_assert_eq!(p.name(), &name);
                read_back(t, &p, &input)?;
                read_back(t, &p, name.as_str())?;
                read_back(t, &p, &name.key())?;
                Ok(Some(p))
            }
            Err(ServiceError::NameTaken { .. }) => {
                let holder = block(t.app.service.get(Some(personae_testkit::home()), &input));
                prop_assert!(holder.is_ok_and(|h| h.name().key() == name.key()));
                Ok(None)
            }
            Err(e) => Err(TestCaseError::fail(format!("{input:?} was refused: {e}"))),
        }
    });
}

#[test]
fn accepted_aliases_round_trip_through_the_database_and_are_found_in_messages() {
    on_one_app("aliases", alias_like(), |t, case, input| {
        let Ok(alias) = Alias::parse(&input) else {
            return Ok(None);
        };
        let registration = Registration {
            name: format!("holder {case}"),
            owner_id: Some(alice()),
            aliases: vec![input.clone()],
            ..Default::default()
        };
        match block(
            t.app
                .service
                .register(&personae_testkit::cli_ctx(), registration),
        ) {
            Ok(p) => {
                prop_assert_eq!(&p.aliases(), &vec![alias.clone()]);
                read_back(t, &p, &input)?;
                read_back(t, &p, alias.as_str())?;
                read_back(t, &p, &format!("@{alias}"))?;
                // The bot's own cache, as the message router uses it.
                let message = format!("hey @{alias}, how are you?");
                let found = find_mention(&message, &personae_testkit::reachable(&t.app.cache));
                prop_assert_eq!(found.map(|m| m.target), Some(p.id()), "{:?}", message);
                Ok(Some(p))
            }
            Err(ServiceError::AliasTaken { .. }) => {
                prop_assert!(block(
                    t.app
                        .service
                        .get(Some(personae_testkit::home()), alias.as_str())
                )
                .is_ok());
                Ok(None)
            }
            Err(ServiceError::Invalid { reason, .. })
                if reason.contains("already the personality's name") =>
            {
                Ok(None)
            }
            Err(e) => Err(TestCaseError::fail(format!("{input:?} was refused: {e}"))),
        }
    });
}

/// The four profile fields as typed, each possibly invalid.
fn profile_like() -> impl Strategy<Value = (String, String, String, String)> {
    (
        display_name_like(),
        avatar_like(),
        prompt_like(),
        model_like(),
    )
}

#[test]
#[allow(clippy::many_single_char_names)] // One letter per profile field: d, a, p, m.
fn accepted_profile_fields_round_trip_through_the_database() {
    on_one_app(
        "profile fields",
        (profile_like(), profile_like()),
        |t, case, (created, updated)| {
            let name = format!("profile {case}");
            let ctx = t.as_user(alice());
            let (display, avatar, prompt, model) = created;
            let expected = (
                DisplayName::parse(&display),
                optional(&avatar, AvatarUrl::parse),
                Prompt::parse(&prompt),
                optional(&model, ModelName::parse),
            );
            let registration = Registration {
                name: name.clone(),
                owner_id: Some(alice()),
                global: false,
                display_name: Some(display.clone()),
                avatar_url: Some(avatar.clone()),
                prompt: Some(prompt.clone()),
                model: Some(model.clone()),
                aliases: Vec::new(),
                ..Registration::default()
            };
            let result = block(t.app.service.register(&ctx, registration));
            let (Ok(d), Ok(a), Ok(p), Ok(m)) = expected else {
                prop_assert!(
                    matches!(result, Err(ServiceError::Invalid { .. })),
                    "an invalid field was accepted: {:?}",
                    result
                );
                prop_assert!(
                    block(t.app.service.get(Some(personae_testkit::home()), &name)).is_err(),
                    "stored anyway"
                );
                return Ok(None);
            };
            let created = result.map_err(|e| TestCaseError::fail(format!("refused: {e}")))?;
            prop_assert_eq!(&created.profile().display_name, &d);
            prop_assert_eq!(&created.profile().avatar_url, &a);
            prop_assert_eq!(&created.profile().prompt, &p);
            prop_assert_eq!(&created.profile().model, &m);
            read_back(t, &created, &name)?;

            // The same values through an update.
            let (display, avatar, prompt, model) = updated;
            let update = ProfileUpdate {
                display_name: Some(display.clone()),
                avatar_url: Some(avatar.clone()),
                prompt: Some(prompt.clone()),
                model: Some(model.clone()),
                ..ProfileUpdate::default()
            };
            let expected = (
                DisplayName::parse(&display),
                optional(&avatar, AvatarUrl::parse),
                Prompt::parse(&prompt),
                optional(&model, ModelName::parse),
            );
            let result = block(t.app.service.update_profile(&ctx, &name, update));
            let (Ok(d), Ok(a), Ok(p), Ok(m)) = expected else {
                let refused = matches!(result, Err(ServiceError::Invalid { .. }));
                prop_assert!(refused, "an invalid update was accepted: {:?}", result);
                read_back(t, &created, &name)?;
                return Ok(Some(created));
            };
            let unchanged = d == created.profile().display_name
                && a == created.profile().avatar_url
                && p == created.profile().prompt
                && m == created.profile().model;
            match result {
                Ok(updated) => {
                    prop_assert!(!unchanged);
                    prop_assert_eq!(&updated.profile().display_name, &d);
                    prop_assert_eq!(&updated.profile().avatar_url, &a);
                    prop_assert_eq!(&updated.profile().prompt, &p);
                    prop_assert_eq!(&updated.profile().model, &m);
                    read_back(t, &updated, &name)?;
                    Ok(Some(updated))
                }
                Err(ServiceError::Rejected(DomainError::NothingToUpdate)) if unchanged => {
                    Ok(Some(created))
                }
                Err(e) => Err(TestCaseError::fail(format!("update refused: {e}"))),
            }
        },
    );
}

/// An empty value means "none" for the optional fields, as the service reads them.
fn optional<T>(
    text: &str,
    parse: fn(&str) -> Result<T, DomainError>,
) -> Result<Option<T>, DomainError> {
    if text.trim().is_empty() {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

// ---------------------------------------------------------------------------------------
// The mention parser
// ---------------------------------------------------------------------------------------

/// Text with many '@' and the characters around them that the parser decides on.
fn message_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        tricky_text(60),
        "([a-zA-Z ,.!<>/]{0,6}@[a-zA-Z0-9 _-]{0,12}){0,6}",
        "\\PC{0,80}",
    ]
}

/// An index built the way the bot builds its own: from aliases as `Alias::parse` keeps them.
fn index_of(aliases: &[String]) -> PlainIndex<String> {
    aliases
        .iter()
        .filter_map(|a| Alias::parse(a).ok())
        .map(|a| (a.to_string(), a.to_string()))
        .collect()
}

fn aliases_like() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            alias_like(),
            Just("a".to_owned()),
            Just("the bard".to_owned()),
            Just("ü".to_owned()),
        ],
        0..6,
    )
}

proptest! {
    #![proptest_config(pure_config())]

    #[test]
    fn the_mention_parser_never_panics_and_its_range_is_a_mention(
        content in message_like(),
        aliases in aliases_like(),
    ) {
        let index = index_of(&aliases);
        if let Some(m) = find_mention(&content, &index) {
            prop_assert!(m.range.start < m.range.end && m.range.end <= content.len());
            prop_assert!(content.is_char_boundary(m.range.start));
            prop_assert!(content.is_char_boundary(m.range.end));
            let text = &content[m.range.clone()];
            prop_assert!(text.starts_with('@'), "{:?}", text);
            // What was matched is what the alias says, however it was typed.
            prop_assert_eq!(lookup_key(&text[1..]), m.target.clone(), "{:?}", text);
            let _ = m.text_without(&content);
        }
    }

    #[test]
    fn an_alias_written_after_an_at_is_found(
        alias in alias_like(),
        prefix in prop_oneof![Just(String::new()), "[^@]{0,16}[ ,(\"]"],
        suffix in prop_oneof![Just(String::new()), "[ ,.!?;:)\n][^@]{0,16}"],
        shout in any::<bool>(),
    ) {
        let Ok(parsed) = Alias::parse(&alias) else { return Ok(()) };
        // As the user typed it: without the '@' and the spaces around it, maybe in capitals.
        let trimmed = alias.trim();
        let typed = trimmed.strip_prefix('@').unwrap_or(trimmed).trim();
        let typed = if shout { typed.to_ascii_uppercase() } else { typed.to_owned() };
        let message = format!("{prefix}@{typed}{suffix}");
        let expected = format!("@{typed}");
        let index = index_of(&[parsed.to_string()]);
        let found = find_mention(&message, &index);
        prop_assert_eq!(
            found.as_ref().map(|m| (m.target.as_str(), &message[m.range.clone()])),
            Some((parsed.as_str(), expected.as_str())),
            "message {:?}, alias {:?}", message, parsed
        );
    }
}

// ---------------------------------------------------------------------------------------
// The bot's cache as the parser's index
// ---------------------------------------------------------------------------------------

/// Words that make aliases sharing prefixes ("the", "the bard", "the bard of avon").
const WORDS: &[&str] = &["the", "bard", "of", "avon", "a", "ü"];

fn key_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 1..4).prop_map(|w| w.join(" "))
}

/// One change to the cache as its event handler makes it: (kind, slot, key, delivered twice).
fn cache_ops() -> impl Strategy<Value = Vec<(u8, usize, String, bool)>> {
    prop::collection::vec(
        (0u8..4, 0usize..4, key_like(), prop::bool::weighted(0.2)),
        0..40,
    )
}

fn message_of_words() -> impl Strategy<Value = String> {
    let tokens: &[&str] = &[
        "@", "@", "the", "bard", "of", "avon", "a", "ü", "Ü", " ", " ", ",", "x",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..16).prop_map(|t| t.join(""))
}

/// A personality in the model of the cache: its id, name key, aliases and version.
type Slot = Option<(PersonalityId, String, BTreeSet<String>, i64)>;

fn info(id: PersonalityId, name: &str, aliases: &BTreeSet<String>, version: i64) -> ProfileInfo {
    ProfileInfo {
        id,
        name: PersonalityName::parse(name).unwrap(),
        owner_id: alice(),
        scope: personae::domain::Scope::Global,
        display_name: DisplayName::parse("Someone").unwrap(),
        avatar_url: None,
        prompt: Prompt::default(),
        model: None,
        nsfw: false,
        temperature: None,
        max_tokens: None,
        aliases: aliases.iter().map(|a| Alias::parse(a).unwrap()).collect(),
        version,
    }
}

proptest! {
    #![proptest_config(pure_config())]

    /// The bot's cache answers the parser's look-ups itself (with a shortcut for keys that
    /// no longer alias starts with). After any sequence of changes, some delivered twice as
    /// after a catch-up, it must find the same mention as a plain index of the same keys.
    #[test]
    fn the_profile_cache_finds_the_same_mentions_as_a_plain_index(
        ops in cache_ops(),
        messages in prop::collection::vec(message_of_words(), 1..8),
    ) {
        let cache = ProfileCache::new();
        let mut slots: Vec<Slot> = vec![None; 4];
        for (kind, slot, key, twice) in ops {
            let taken = slots.iter().flatten().any(|(_, n, a, _)| *n == key || a.contains(&key));
            let deliveries = if twice { 2 } else { 1 };
            match (kind, &mut slots[slot]) {
                (0, s @ None) if !taken => {
                    let (id, aliases) = (PersonalityId::new(), BTreeSet::new());
                    for _ in 0..deliveries {
                        cache.put(info(id, &key, &aliases, 1));
                    }
                    *s = Some((id, key, aliases, 1));
                }
                (1, Some((id, _, aliases, version))) if !taken => {
                    *version += 1;
                    aliases.insert(key.clone());
                    for _ in 0..deliveries {
                        cache.add_alias(*id, &Alias::parse(&key).unwrap(), *version);
                    }
                }
                (2, Some((id, _, aliases, version))) if aliases.contains(&key) => {
                    *version += 1;
                    aliases.remove(&key);
                    for _ in 0..deliveries {
                        cache.remove_alias(*id, &Alias::parse(&key).unwrap(), *version);
                    }
                }
                (3, s @ Some(_)) => {
                    let (id, name, aliases, _) = s.take().unwrap();
                    let aliases: Vec<Alias> =
                        aliases.iter().map(|a| Alias::parse(a).unwrap()).collect();
                    for _ in 0..deliveries {
                        cache.remove(id, &PersonalityName::parse(&name).unwrap(), &aliases);
                    }
                }
                _ => {}
            }
        }
        let mut expected: Vec<(String, PersonalityId)> = slots
            .iter()
            .flatten()
            .flat_map(|(id, name, aliases, _)| {
                std::iter::once((name.clone(), *id)).chain(aliases.iter().map(|a| (a.clone(), *id)))
            })
            .collect();
        expected.sort();
        let mut keys: Vec<(String, PersonalityId)> =
            cache.keys().into_iter().map(|(_, key, id)| (key, id)).collect();
        keys.sort();
        prop_assert_eq!(&keys, &expected);
        let index: PlainIndex<PersonalityId> =
            expected.iter().map(|(k, id)| (k.as_str(), *id)).collect();
        for message in messages {
            let by_cache = find_mention(&message, &personae_testkit::reachable(&cache))
                .map(|m| (m.target, m.range));
            let by_index = find_mention(&message, &index).map(|m| (m.target, m.range));
            prop_assert_eq!(by_cache, by_index, "{:?} with keys {:?}", message, expected);
        }
    }
}
